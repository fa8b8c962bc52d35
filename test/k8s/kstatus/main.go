// arena-kstatus computes kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) for
// Kubernetes objects, the rules kubectl-free tools (Flux, Argo CD, kpt,
// cli-utils' apply) use to tell "in progress" from "current" and "failed".
//
//	kubectl get arenasource NAME -o json | arena-kstatus
//
// reads one object (or a List of them) as JSON on stdin and prints, per
// object, one JSON line: {"name", "status" (Current, InProgress, Failed,
// Terminating, ...), "message"}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	log.SetFlags(0)
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		log.Fatalf("reading stdin: %v", err)
	}
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(in); err != nil {
		log.Fatalf("stdin is not a Kubernetes object: %v", err)
	}
	items := []unstructured.Unstructured{obj}
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			log.Fatalf("reading the list: %v", err)
		}
		items = list.Items
	}
	out := json.NewEncoder(os.Stdout)
	for i := range items {
		res, err := status.Compute(&items[i])
		if err != nil {
			log.Fatalf("%s: %v", items[i].GetName(), err)
		}
		if err := out.Encode(result{Name: items[i].GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
