# gridengine: the scheduler/sge integration tests submit jobs to a real single-host Son of Grid Engine cell.
# The packages are installed by the setup script, not through packages+=, because debconf must be answered
# before they are installed and their daemons must not start on their own.
services+=(gridengine)
start_gridengine() { bash scripts/gridengine-setup.sh 8; }
stop_gridengine() { bash scripts/gridengine-teardown.sh; }
