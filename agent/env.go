package agent

import (
	"slices"
	"strings"
)

// envConfigFile names the configuration file, as --config-file does.
const envConfigFile = EnvPrefix + "CONFIG_FILE"

// clientEnvVars are CONCORD_* variables that belong to Concord's client
// commands and to programs run under `concord lock`, not to the agent. The
// agent ignores them instead of refusing them as unknown, so that one shell
// can set both. They follow etcdctl's flag names.
func clientEnvVars() []string {
	return []string{
		"CONCORD_FENCING_TOKEN",
		"CONCORD_ENDPOINTS", "CONCORD_DIAL_TIMEOUT", "CONCORD_COMMAND_TIMEOUT",
		"CONCORD_KEEPALIVE_TIME", "CONCORD_KEEPALIVE_TIMEOUT", "CONCORD_WRITE_OUT",
		"CONCORD_USER", "CONCORD_PASSWORD", "CONCORD_CACERT", "CONCORD_CERT", "CONCORD_KEY",
		"CONCORD_INSECURE_TRANSPORT", "CONCORD_INSECURE_SKIP_TLS_VERIFY", "CONCORD_DEBUG",
	}
}

// lookupEnv returns the value of name in environ ("KEY=value" entries); the
// first entry wins, as with os.Getenv.
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// applyEnv applies every CONCORD_* variable in environ to c. An empty
// variable counts as unset, as in etcd. An unknown CONCORD_* variable is an
// error (etcd only warns), so that a misspelt CONCORD_DATADIR does not leave
// the member writing to the wrong directory.
func (c *Config) applyEnv(environ []string, idx *keyIndex) []*KeyError {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || v == "" {
			continue
		}
		if _, dup := vars[k]; !dup {
			vars[k] = v
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names) // errors in a stable order

	ignored := clientEnvVars()
	var errs []*KeyError
	for _, name := range names {
		src := origin{where: "env " + name, rank: rankEnv}
		if name == envConfigFile || slices.Contains(ignored, name) {
			continue
		}
		spec, ok := idx.byEnv[name]
		if !ok {
			errs = append(errs, unknownEnv(name, src, idx))
			continue
		}
		text := vars[name]
		if err := c.applyKey(spec, src, func(v keyValue) error { return v.set(text) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func unknownEnv(name string, src origin, idx *keyIndex) *KeyError {
	candidates := make([]string, 0, len(idx.byEnv))
	for env := range idx.byEnv {
		candidates = append(candidates, env)
	}
	slices.Sort(candidates)
	msg := "unknown variable"
	if s := suggest(name, candidates); s != "" {
		msg += " (did you mean " + s + "?)"
	} else {
		msg += " (the agent reads CONCORD_<FLAG_NAME>, e.g. CONCORD_DATA_DIR for --data-dir)"
	}
	return &KeyError{Where: src.where, Key: name, Msg: msg, Kind: ErrUnknownKey, src: src}
}
