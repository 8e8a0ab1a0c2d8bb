package auth

import _ "embed"

// SampleConfig is the auth section of a configuration for a Keycloak realm,
// every common option with a comment, for screenpopd to print.
//
//go:embed sample.yaml
var SampleConfig string
