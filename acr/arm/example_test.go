package arm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/acr/arm"
)

// Push with the admin user, its password taken from Azure Resource Manager as the
// portal's Access keys show it.
//
// Compile-only: it needs an Azure subscription, an identity with rights on it and
// network access to Azure and Docker Hub, so it has no Output line and go test does not
// run it.
func ExampleRegistries_AdminCredentials() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	registries, err := arm.NewRegistries("00000000-0000-0000-0000-000000000000", cred)
	if err != nil {
		log.Fatal(err)
	}
	reg, err := registries.Get(ctx, "hpc-rg", "myacr")
	if err != nil {
		log.Fatal(err)
	}
	creds, err := registries.AdminCredentials(ctx, "hpc-rg", "myacr")
	if err != nil {
		log.Fatal(err)
	}
	ref, err := name.ParseReference(reg.LoginServer + "/rdma:latest")
	if err != nil {
		log.Fatal(err)
	}
	img, err := remote.Image(name.MustParseReference("docker.io/library/centos:7"), remote.WithContext(ctx))
	if err != nil {
		log.Fatal(err)
	}
	keychain := acr.NewAdminKeychain(reg.LoginServer, creds.Username, creds.Passwords[0])
	digest, err := acr.Push(ctx, ref, img, acr.WithKeychain(keychain))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(digest)
}

// Create a Basic registry with the admin user enabled, as `az acr create --sku Basic
// --admin-enabled true` does. Running it again returns the same registry.
//
// Compile-only: it creates a billed resource in an Azure subscription, so it has no
// Output line and go test does not run it.
func ExampleRegistries_Create() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	registries, err := arm.NewRegistries("00000000-0000-0000-0000-000000000000", cred)
	if err != nil {
		log.Fatal(err)
	}
	reg, err := registries.Create(ctx, arm.CreateSpec{
		ResourceGroup:    "hpc-rg",
		Name:             "myacr",
		Location:         "westeurope",
		SKU:              arm.SKUBasic,
		AdminUserEnabled: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reg.LoginServer)
}
