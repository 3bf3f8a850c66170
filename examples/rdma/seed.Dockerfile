# The image of the seed workflow: CentOS 7 with the nodes' Intel MPI 5.1 (intel.tgz: a tarball of the
# host's /opt/intel, next to this file) and the InfiniBand user space the DAPL fabric needs.
# CentOS 7 is end-of-life: its packages are on vault.centos.org now, so the repositories are pointed there
# first. /etc/rdma/dat.conf is the mount point for the node's own dat.conf, which the job binds in.
FROM centos:7
WORKDIR /app
ADD intel.tgz /opt/
RUN sed -i -e 's/^mirrorlist/#mirrorlist/' -e 's|^#baseurl=http://mirror.centos.org|baseurl=http://vault.centos.org|' /etc/yum.repos.d/*.repo && \
    yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl && \
    mkdir -p /etc/rdma && touch /etc/rdma/dat.conf
ENV LD_LIBRARY_PATH=/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/
ENTRYPOINT ["/bin/sh", "-c", "exec \"$@\"", "sh"]
