package configs

import (
	"embed"
	"io/fs"
)

//go:embed demo.yaml demo
var embedded embed.FS

// DemoFile is the name the embedded demo configuration reports in errors.
const DemoFile = "configs/demo.yaml (embedded)"

// Demo returns the embedded demo configuration: the built-in call
// generator, file-backed demo sources and an in-process cache. It is what
// `make run` starts with on a machine that has nothing else.
func Demo() (*Config, error) {
	data, err := fs.ReadFile(embedded, "demo.yaml")
	if err != nil {
		return nil, err
	}
	return Parse(DemoFile, data, embedded)
}
