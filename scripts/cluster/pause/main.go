// Command pause is the pod sandbox ("infra") process: it holds the pod's namespaces open, reaps
// zombie children (it is PID 1 when the pod shares its PID namespace) and exits on SIGINT/SIGTERM.
// Built here because the upstream pause image comes from a container registry we cannot reach.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
