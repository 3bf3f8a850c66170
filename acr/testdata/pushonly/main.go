// Command pushonly is the smallest program that pushes with package acr, with every
// kind of credential it offers. TestPushOnlyLinksNoARM lists what it links.
package main

import (
	"context"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/hpcship/hpcship/acr"
)

func main() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	kc, err := acr.NewKeychain(cred)
	if err != nil {
		log.Fatal(err)
	}
	ref, err := name.ParseReference(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	if _, err := acr.Push(ctx, ref, empty.Image, acr.WithKeychain(kc)); err != nil {
		log.Fatal(err)
	}
}
