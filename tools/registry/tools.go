//go:build tools

// Package tools pins the CNCF distribution registry that build.sh compiles (the local cluster's OCI
// registry: images pushed by `make image-push` and by build Jobs, pulled by the real node's containerd).
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
