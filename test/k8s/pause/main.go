// arena-pause is the sandbox ("pause") image of the one-node test cluster
// (test/helpers/node.ts) and a minimal HTTP server for its tests, as one
// static binary: the image holds nothing else (no shell, no libc).
//
//	arena-pause               waits for SIGTERM or SIGINT (a pod's sandbox)
//	arena-pause -http :8080   also answers every request with "ok <hostname>"
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("http", "", "serve HTTP on this address")
	flag.Parse()
	if *addr != "" {
		host, _ := os.Hostname()
		go func() {
			log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "ok %s\n", host)
			})))
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
