//go:build tools

// Pins the main package so `go mod tidy` keeps its whole dependency graph.
package tools

import _ "github.com/fluxcd/source-controller"
