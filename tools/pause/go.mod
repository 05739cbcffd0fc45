// The local real node's pause binary (standard library only).
module modelops.dev/tools/pause

go 1.24.0
