package imagebuild

// UnpackEveryStep makes r unpack a root of its own for every step, as it does
// where the kernel refuses overlay mounts.
func UnpackEveryStep(r *NamespaceRunner) *NamespaceRunner {
	r.noOverlay.Store(true)
	return r
}

// Overlaid reports whether r still runs steps on an overlay of a kept root.
func Overlaid(r *NamespaceRunner) bool { return !r.noOverlay.Load() }
