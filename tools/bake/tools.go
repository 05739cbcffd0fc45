//go:build tools

// tools/gobuild.sh keys its cache on go.mod, go.sum and tools.go of every tool it builds (the others pin
// a command here); this tool's source is main.go, which build.sh adds to the key.
package main
