// Command pause is the sandbox ("pause") container of the local real node: it holds a pod's namespaces
// and does nothing else until it is told to stop. Built statically by tools/cluster/build.sh --node and
// imported into containerd as an image of one file, so that no registry is needed.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
