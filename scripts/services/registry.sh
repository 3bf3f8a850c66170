# acr: the integration tests start their own docker-registry (distribution 2.8) on free 127.0.0.1 ports through
# internal/acrtest, behind an in-process ACR token emulator; nothing runs as a service. On a machine with systemd the
# package also enables a docker-registry service on :5000 with its own config, which the tests do not use.
packages+=(docker-registry)
