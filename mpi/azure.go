package mpi

import (
	"regexp"
	"strconv"
	"strings"
)

// azureFamily describes one Azure RDMA-capable VM family.
type azureFamily struct {
	name          string
	sizes         *regexp.Regexp // matches the whole lower-case size without "standard_"
	networkDirect bool
	interconnect  string
	// minIntel is the oldest Intel MPI the interconnect works with, if any.
	minIntel [2]int
}

// sizes compiles a family's size pattern, anchored at both ends.
func sizes(pattern string) *regexp.Regexp { return regexp.MustCompile(`^(` + pattern + `)$`) }

// azureFamilies are the families presets exist for, in the order errors list them, with
// their size patterns compiled once. Never modified.
var azureFamilies = []azureFamily{
	// [rdma-cluster], [setup-infiniband]: A8/A9 are QDR InfiniBand over Network Direct.
	{name: "A8/A9", sizes: sizes(`a8|a9`), networkDirect: true, interconnect: "QDR InfiniBand (Network Direct)"},
	// [setup-infiniband]: H16r/H16mr are FDR InfiniBand, not SR-IOV.
	{name: "H16r/H16mr", sizes: sizes(`h16m?r(_promo)?`), networkDirect: true, interconnect: "FDR InfiniBand (Network Direct)"},
	{name: "HB", sizes: sizes(`hb60(-\d+)?rs`), interconnect: "EDR InfiniBand (SR-IOV)"},
	{name: "HC", sizes: sizes(`hc44(-\d+)?rs`), interconnect: "EDR InfiniBand (SR-IOV)"},
	{name: "HBv2", sizes: sizes(`hb120(-\d+)?rs_v2`), interconnect: "HDR InfiniBand (SR-IOV)"},
	{name: "HBv3", sizes: sizes(`hb120(-\d+)?rs_v3`), interconnect: "HDR InfiniBand (SR-IOV)"},
	// [hx-overview]: NDR needs Intel MPI 2021.7; HBv4 is NDR too (hbv4-series-summary).
	{name: "HBv4", sizes: sizes(`hb176(-\d+)?rs_v4`), interconnect: "NDR InfiniBand (SR-IOV)", minIntel: [2]int{2021, 7}},
	{name: "HX", sizes: sizes(`hx176(-\d+)?rs`), interconnect: "NDR InfiniBand (SR-IOV)", minIntel: [2]int{2021, 7}},
	{name: "NDv2", sizes: sizes(`nd40rs_v2`), interconnect: "EDR InfiniBand (SR-IOV)"},
	{name: "NDv4", sizes: sizes(`nd96(asr|amsr_a100)_v4`), interconnect: "HDR InfiniBand (SR-IOV)"},
}

// AzureFamilies returns the names of the VM families AzurePreset knows, e.g.
// "H16r/H16mr", "HBv3".
func AzureFamilies() []string {
	names := make([]string, len(azureFamilies))
	for i, f := range azureFamilies {
		names[i] = f.name
	}
	return names
}

// Preset holds what one Azure VM family needs from MPI and from the container: the
// Intel MPI environment per version (IntelMPI), the UCX environment for HPC-X and
// Open MPI (UCX), and the host files to bind into the container (Binds).
//
// Every setting cites its source in brackets; the sources are:
//
//   - [rdma-cluster]: MicrosoftDocs/azure-docs@003ecdcb
//     articles/virtual-machines/linux/classic/rdma-cluster.md — Intel MPI 5.x on
//     H16r/A8/A9: I_MPI_FABRICS=shm:dapl, I_MPI_DAPL_PROVIDER=ofa-v2-ib0 and
//     I_MPI_DYNAMIC_CONNECTION=0, each marked "THIS IS A MANDATORY ENVIRONMENT
//     VARIABLE".
//   - [singularity-recipe]: "Singularity on Azure HPC VMs" (tested on H16r with the
//     CentOS 7.1 HPC image) — adds I_MPI_FALLBACK=0 ("will not fallback to anything
//     else (i.e. TCP)") and I_MPI_DAPL_TRANSLATION_CACHE=0 ("works around an Intel MPI
//     bug"), and binds the host's /etc/rdma/dat.conf with SINGULARITY_BINDPATH.
//   - [waagent]: Azure/WALinuxAgent@00aa43ab azurelinuxagent/common/rdma.py — rewrites
//     the ofa-v2-ib0 line of /etc/rdma/dat.conf with each node's RDMA address, so the
//     file is node-specific and must come from the host.
//   - [setup-infiniband]: MicrosoftDocs/azure-compute-docs@9785197c
//     high-performance-compute/setup-infiniband.md — every RDMA VM is SR-IOV except
//     H16r, H16mr (and NC24r); those support only MS-MPI and Intel MPI 5.x.
//   - [setup-mpi]: MicrosoftDocs/azure-compute-docs@57aa4449
//     articles/virtual-machines/setup-mpi.md — SR-IOV VMs: Intel MPI 2019 and 2021
//     I_MPI_FABRICS=shm:ofi with the mlx provider (verbs "unstable and less
//     performant"); 2018 shm:ofa; 2016 (5.1) I_MPI_DAPL_PROVIDER=ofa-v2-ib0; HPC VM
//     images name InfiniBand interfaces mlx5_ib*.
//   - [intel-mlx]: intel.com "Improve performance and stability with Intel MPI Library
//     on InfiniBand" — the mlx provider arrived in 2019 Update 5 (FI_PROVIDER=mlx).
//   - [intel-2021.19]: Intel MPI 2021.19 release notes — the mlx provider is deprecated
//     in favour of libfabric's open-source UCX provider.
//   - [hx-overview]: MicrosoftDocs/azure-compute-docs@afa7bbe4 hx-series-overview.md —
//     NDR 400 Gb/s InfiniBand needs Intel MPI 2021.7 or later (UCX 1.13, MOFED 5.6).
//   - [rdma-naming]: Azure/azhpc-images@8e9d055f
//     components/install_azure_persistent_rdma_naming.sh — InfiniBand devices are
//     renamed mlx5_ib<N> on Azure HPC images, hence UCX_NET_DEVICES=mlx5_ib0:1.
//   - [azurehpc]: Azure/azurehpc@2d57191c apps/pamcrash/pamcrash.sh and
//     apps/imb-mpi/ringpingpong.sh — Azure's own scripts: DAPL-era Intel MPI on HB/HC
//     with I_MPI_FABRICS=shm:dapl; FI_PROVIDER=mlx with shm:ofi for 2019.
//   - [scaling]: MicrosoftDocs/azure-compute-docs@9785197c
//     compiling-scaling-applications.md — UCX_TLS=rc,sm below 256K connections
//     (ranks per node × nodes × nodes), dc,sm above.
type Preset struct {
	// Family is the VM family, e.g. "H16r/H16mr" or "HBv3".
	Family string
	// VMSize is the size the preset was looked up by, as given.
	VMSize string
	// NetworkDirect is true for the families without SR-IOV (A8/A9, H16r/H16mr), whose
	// InfiniBand is reachable only through DAPL over Microsoft's Network Direct driver.
	NetworkDirect bool
	// Interconnect describes the RDMA network.
	Interconnect string
	// Binds are the host paths a container must see, as Apptainer/Singularity bind
	// specs "src[:dst[:opts]]" (for --bind or SINGULARITY_BINDPATH, joined with ",";
	// package singularity renders both). On Network Direct VMs it is
	// /etc/rdma/dat.conf: WALinuxAgent writes each node's RDMA address into it
	// [waagent], and the seed recipe binds it with SINGULARITY_BINDPATH
	// [singularity-recipe]. SR-IOV VMs need none beyond the runtime's default /dev.
	Binds []string

	minIntel [2]int
}

// AzurePreset returns the preset for an Azure VM size such as "Standard_H16r" or
// "Standard_HB120rs_v3". Matching ignores case and the "Standard_" prefix, and
// covers the constrained-core sizes (HB120-64rs_v3). A size outside the known
// RDMA-capable families is an *UnknownVMSizeError (ErrUnknownVMSize) listing them.
func AzurePreset(vmSize string) (Preset, error) {
	key := strings.ToLower(strings.TrimSpace(vmSize))
	key = strings.TrimPrefix(key, "standard_")
	for _, f := range azureFamilies {
		if !f.sizes.MatchString(key) {
			continue
		}
		p := Preset{Family: f.name, VMSize: vmSize, NetworkDirect: f.networkDirect, Interconnect: f.interconnect, minIntel: f.minIntel}
		if f.networkDirect {
			p.Binds = []string{"/etc/rdma/dat.conf"}
		}
		return p, nil
	}
	return Preset{}, &UnknownVMSizeError{Size: vmSize, Known: AzureFamilies()}
}

// IntelMPI returns the Intel MPI configuration Azure documents for this family and
// version v:
//
//	Network Direct (A8/A9, H16r/H16mr), Intel MPI 5.x to 2018:
//	  I_MPI_FABRICS=shm:dapl               [rdma-cluster] (mandatory)
//	  I_MPI_FALLBACK=0                     [singularity-recipe]
//	  I_MPI_DAPL_PROVIDER=ofa-v2-ib0       [rdma-cluster] (mandatory)
//	  I_MPI_DYNAMIC_CONNECTION=0           [rdma-cluster] (mandatory)
//	  I_MPI_DAPL_TRANSLATION_CACHE=0       [singularity-recipe]
//	Network Direct, Intel MPI 2019 and later: error, no DAPL [setup-infiniband]
//	SR-IOV, Intel MPI 5.x (2016):
//	  I_MPI_FABRICS=shm:dapl               [azurehpc]
//	  I_MPI_DAPL_PROVIDER=ofa-v2-ib0       [setup-mpi]
//	SR-IOV, Intel MPI 2017 and 2018:
//	  I_MPI_FABRICS=shm:ofa                [setup-mpi]
//	SR-IOV, Intel MPI 2019 Update 5 to 2021.18:
//	  I_MPI_FABRICS=shm:ofi                [setup-mpi]
//	  I_MPI_OFI_PROVIDER=mlx               [setup-mpi]
//	  FI_PROVIDER=mlx                      [intel-mlx], [azurehpc]
//	SR-IOV, Intel MPI 2021.19 and later:
//	  I_MPI_FABRICS=shm:ofi, provider left to Intel MPI's automatic choice, since mlx
//	  is deprecated there [intel-2021.19] and the replacement's name is unconfirmed
//	SR-IOV, Intel MPI 2019 before Update 5: error (no mlx provider) [intel-mlx]
//	HBv4, HX: Intel MPI older than 2021.7 is an error (NDR) [hx-overview]
//
// Azure documents 2018 only ("Intel MPI 2018: use shm:ofa"); 2017 gets the same,
// being of the same fabric generation. The result is a plain Config: change fields
// (Debug, PinDomain, Extra, ...) before calling Env. Errors are *PresetError.
func (p Preset) IntelMPI(v Version) (Config, error) {
	if v.IsZero() {
		return Config{}, &PresetError{Family: p.Family, Reason: "the Intel MPI version is required", Err: ErrInvalidSetting}
	}
	if p.NetworkDirect {
		if v.LibfabricOnly() {
			return Config{}, &PresetError{Family: p.Family, Err: ErrUnsupportedByVersion,
				Reason: "Intel MPI " + v.String() + " has no DAPL fabric, the only way to the InfiniBand of these Network Direct VMs; Azure supports Intel MPI 5.x here"}
		}
		return Config{
			Version: v,
			// [rdma-cluster]: mandatory; the "shm:" prefix was added by azure-docs PR #2534.
			Fabrics: Fabrics{Intra: FabricSHM, Inter: FabricDAPL},
			// [singularity-recipe]: fail rather than fall back to TCP.
			Fallback: Off,
			// [rdma-cluster]: mandatory; the provider WALinuxAgent writes to dat.conf [waagent].
			DAPLProvider: "ofa-v2-ib0",
			// [rdma-cluster]: mandatory; needed because of the Network Direct driver.
			DynamicConnection: Off,
			// [singularity-recipe]: works around random, infrequent Intel MPI crashes.
			TranslationCache: Off,
		}, nil
	}
	if p.minIntel != [2]int{} && !v.AtLeast(p.minIntel[0], p.minIntel[1]) {
		return Config{}, &PresetError{Family: p.Family, Err: ErrUnsupportedByVersion,
			Reason: "NDR InfiniBand needs Intel MPI " + strconv.Itoa(p.minIntel[0]) + "." + strconv.Itoa(p.minIntel[1]) + " or later, not " + v.String()}
	}
	switch {
	case v.Major() <= 5:
		// [setup-mpi]: "Intel MPI 2016: use I_MPI_DAPL_PROVIDER=ofa-v2-ib0"; the fabric
		// that provider belongs to, as [azurehpc] sets it.
		return Config{Version: v, Fabrics: Fabrics{Intra: FabricSHM, Inter: FabricDAPL}, DAPLProvider: "ofa-v2-ib0"}, nil
	case !v.LibfabricOnly():
		// [setup-mpi]: "Intel MPI 2018: use I_MPI_FABRICS=shm:ofa".
		return Config{Version: v, Fabrics: Fabrics{Intra: FabricSHM, Inter: FabricOFA}}, nil
	case !v.AtLeast(2019, 5):
		return Config{}, &PresetError{Family: p.Family, Err: ErrUnsupportedByVersion,
			Reason: "the mlx provider Azure recommends arrived in Intel MPI 2019 Update 5, not in " + v.String() + "; use 2019.5 or later (or build a Config with the verbs provider yourself)"}
	case v.AtLeast(2021, 19):
		// [intel-2021.19]: mlx is deprecated; let Intel MPI choose the provider.
		return Config{Version: v, Fabrics: Fabrics{Intra: FabricSHM, Inter: FabricOFI}}, nil
	}
	// [setup-mpi]: "2019 and 2021: use I_MPI_FABRICS=shm:ofi, I_MPI_OFI_PROVIDER=mlx".
	return Config{Version: v, Fabrics: Fabrics{Intra: FabricSHM, Inter: FabricOFI}, OFIProvider: "mlx"}, nil
}

// UCX is the UCX environment HPC-X and Open MPI (and MPICH built with ch4:ucx) use on
// SR-IOV InfiniBand. Pass Env to the launcher (Open MPI: -x) or export it.
type UCX struct {
	// TLS sets UCX_TLS, the transports, e.g. "rc,sm".
	TLS string
	// NetDevices sets UCX_NET_DEVICES, e.g. "mlx5_ib0:1".
	NetDevices string
	// IBPKey sets UCX_IB_PKEY, the InfiniBand partition key with its top bit cleared
	// (0x800b becomes 0x000b). It is node-specific (read from
	// /sys/class/infiniband/<dev>/ports/1/pkeys), so presets leave it empty.
	IBPKey string
}

// Env renders the set fields as UCX_TLS, UCX_NET_DEVICES, UCX_IB_PKEY, in that order.
func (u UCX) Env() ([]string, error) {
	var env []string
	for _, s := range []struct{ name, value string }{
		{"UCX_TLS", u.TLS}, {"UCX_NET_DEVICES", u.NetDevices}, {"UCX_IB_PKEY", u.IBPKey},
	} {
		if s.value == "" {
			continue
		}
		if err := checkToken(s.name, s.value); err != nil {
			return nil, err
		}
		env = append(env, s.name+"="+s.value)
	}
	return env, nil
}

// ucxDCThreshold is where Azure recommends switching from RC to DC transport: 256K
// connections [scaling].
const ucxDCThreshold = 256 * 1024

// UCX returns the UCX settings for a job of nodes × ranksPerNode ranks on this
// family: UCX_NET_DEVICES=mlx5_ib0:1, the first InfiniBand port as Azure HPC images
// name it [rdma-naming], [setup-mpi]; and UCX_TLS=rc,sm, or dc,sm when
// ranksPerNode × nodes × nodes reaches 256K connections [scaling]. Network Direct
// families have no UCX path: that is a *PresetError.
func (p Preset) UCX(nodes, ranksPerNode int) (UCX, error) {
	if p.NetworkDirect {
		return UCX{}, &PresetError{Family: p.Family, Err: ErrInvalidSetting,
			Reason: "Network Direct VMs are not SR-IOV and support only MS-MPI and Intel MPI 5.x, not UCX"}
	}
	if nodes <= 0 || ranksPerNode <= 0 {
		return UCX{}, &PresetError{Family: p.Family, Err: ErrInvalidSetting,
			Reason: "nodes and ranks per node must be positive, got " + strconv.Itoa(nodes) + " and " + strconv.Itoa(ranksPerNode)}
	}
	u := UCX{TLS: "rc,sm", NetDevices: "mlx5_ib0:1"}
	// In float64 the product cannot overflow, and it is exact far beyond the threshold.
	if float64(ranksPerNode)*float64(nodes)*float64(nodes) >= ucxDCThreshold {
		u.TLS = "dc,sm"
	}
	return u, nil
}
