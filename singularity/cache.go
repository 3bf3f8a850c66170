package singularity

import v1 "github.com/google/go-containerregistry/pkg/v1"

type cachedLayer struct {
	v1.Layer
	dir string
}
