package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FindTool returns the path of a binary that `make tools` builds into the
// repository's bin/ (etcd, etcdctl, benchmark): the path in the environment
// variable env when it is set, else bin/name at the root of the module
// holding the working directory. Without one, missing says why and what
// to run.
func FindTool(name, env string) (path, missing string) {
	if p := os.Getenv(env); p != "" {
		if isExecutable(p) {
			return p, ""
		}
		return "", fmt.Sprintf("%s=%s is not an executable file", env, p)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Sprintf("no %s: %v, and %s is unset", name, err, env)
	}
	p := filepath.Join(root, "bin", name)
	if !isExecutable(p) {
		return "", fmt.Sprintf("no %s at %s: run `make bin/%s` in %s or set %s", name, p, name, root, env)
	}
	return p, ""
}

// Tool is FindTool for a test: it skips t when the binary is missing.
func Tool(t testing.TB, name, env string) string {
	t.Helper()
	p, missing := FindTool(name, env)
	if p == "" {
		t.Skip(missing)
	}
	return p
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
