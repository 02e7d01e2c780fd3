package bench

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel send the child SIGTERM if the bench
// dies, so that no hookd or receiver outlives it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// flushDisks writes dirty pages to disk (sync(2)), so that a measurement is
// not slowed by the writeback of an earlier one's files.
func flushDisks() { syscall.Sync() }
