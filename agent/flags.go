package agent

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Parse builds the agent's configuration from command-line arguments and an
// environment (os.Environ() in main), layering, each over the one before:
//
//	defaults < --config-file (or CONCORD_CONFIG_FILE) < CONCORD_* variables < explicit flags
//
// etcd ignores every flag and variable once a config file is given; Concord
// applies them over the file, so `--config-file prod.yml --log-level debug`
// does what it says. Then it fills derived values (dev mode, data-dir from
// name, ...) and runs Validate. The error reports every problem found, each
// naming its key and where the value came from. -h or --help returns an
// error that wraps pflag.ErrHelp.
func Parse(args []string, environ []string) (Config, error) {
	fs := pflag.NewFlagSet("concord agent", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch := DefaultConfig()
	BindFlags(fs, &scratch)
	if err := fs.Parse(args); err != nil {
		return Config{}, FlagError(err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: the agent takes only flags", fs.Arg(0))
	}
	return FromFlags(fs, environ)
}

// FlagError adds a suggestion to pflag's "unknown flag: --lisen-client-urls"
// error: "(did you mean --listen-client-urls?)". Parse uses it; a cobra
// command gets the same with cmd.SetFlagErrorFunc(func(_ *cobra.Command,
// err error) error { return agent.FlagError(err) }).
func FlagError(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	idx := newKeyIndex()
	flags := []string{"config-file"}
	for _, s := range idx.specs {
		if !s.unsupported() {
			flags = append(flags, s.flag)
		}
	}
	if s := suggest(name, flags); s != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, s)
	}
	return err
}

// flagConfigFile is the flag that names the YAML file.
const flagConfigFile = "config-file"

// BindFlags registers on fs one flag per configuration key, with etcd's
// names and help text and c's values as the defaults shown, plus
// --config-file. Parsing fs writes into c; to get the full layering (file
// and environment under the flags) pass fs, once parsed, to FromFlags. This
// is how a cobra command registers the agent's flags: BindFlags(cmd.Flags(),
// &scratch), then FromFlags(cmd.Flags(), os.Environ()) in RunE. etcd options
// that Concord does not implement are registered hidden, so that a command
// line that spells out their defaults still works.
func BindFlags(fs *pflag.FlagSet, c *Config) {
	for _, spec := range newKeyIndex().specs {
		b := &flagBinding{spec: spec}
		if spec.unsupported() {
			b.val = spec.newScratch()
		} else {
			b.val = spec.field(c)
		}
		f := fs.VarPF(b, spec.flag, "", spec.usage)
		if spec.docDefault != "" {
			f.DefValue = spec.docDefault
		}
		if b.val.typeName() == "bool" {
			f.NoOptDefVal = "true"
		}
		f.Hidden = spec.unsupported()
	}
	fs.VarPF(&flagBinding{val: stringValue{&c.ConfigFile}}, flagConfigFile, "",
		"Path to a YAML configuration file with the same keys as the flags; flags and CONCORD_* variables override it.")
}

// flagBinding is a flag's pflag.Value: it parses into the bound Config (for
// pflag and for --help) and keeps every value given, so that FromFlags can
// apply them again over the file and the environment.
type flagBinding struct {
	spec *keySpec // nil for --config-file
	val  keyValue
	raw  []string
}

func (b *flagBinding) String() string {
	if b.val == nil {
		return ""
	}
	return b.val.String()
}

func (b *flagBinding) Set(s string) error {
	if err := b.val.set(s); err != nil {
		return err
	}
	b.raw = append(b.raw, s)
	return nil
}

func (b *flagBinding) Type() string { return b.val.typeName() }

// FromFlags builds the configuration from a FlagSet that BindFlags prepared
// and that has been parsed, and from environ: defaults < config file <
// environment < the flags that were given. It fills derived values and runs
// Validate, as Parse does.
func FromFlags(fs *pflag.FlagSet, environ []string) (Config, error) {
	idx := newKeyIndex()
	c := DefaultConfig()
	var errs []*KeyError

	path := lookupEnv(environ, envConfigFile)
	if f := fs.Lookup(flagConfigFile); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		errs = append(errs, c.applyFile(path, idx)...)
	}
	errs = append(errs, c.applyEnv(environ, idx)...)
	errs = append(errs, c.applyFlags(fs)...)
	errs = append(errs, c.resolve(len(errs) == 0)...)
	errs = append(errs, c.validate()...)
	if len(errs) > 0 && c.tempDataDir {
		// Refused: leave nothing behind.
		_ = os.RemoveAll(c.DataDir)
		c.tempDataDir = false
	}
	return c, joinKeyErrors(errs)
}

// applyFlags applies, in order, every value given to the flags of fs that
// BindFlags registered.
func (c *Config) applyFlags(fs *pflag.FlagSet) []*KeyError {
	var errs []*KeyError
	fs.Visit(func(f *pflag.Flag) {
		b, ok := f.Value.(*flagBinding)
		if !ok || b.spec == nil {
			return
		}
		src := origin{where: "flag --" + f.Name, rank: rankFlag}
		for _, text := range b.raw {
			if err := c.applyKey(b.spec, src, func(v keyValue) error { return v.set(text) }); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errs
}
