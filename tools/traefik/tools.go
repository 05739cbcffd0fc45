//go:build tools

// Package tools pins the Traefik command that build.sh compiles.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
