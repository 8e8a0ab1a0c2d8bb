package demo

import _ "embed"

// Sample is a commented example configuration of this telephony kind,
// printed by `screenpopd sample` (see README.md).
//
//go:embed sample.yaml
var Sample []byte
