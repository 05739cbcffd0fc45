//go:build tools

// Package tools pins the actionlint command that build.sh compiles: tests/unit/test_workflows.py checks
// the GitHub Actions workflows (syntax, expressions, job dependencies, shell through shellcheck).
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
