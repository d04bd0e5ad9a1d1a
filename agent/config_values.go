package agent

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// keyValue reads one key's value, written as text (a flag or an environment
// variable) or as a YAML node, into its field. Errors say what was wanted and
// what was got, without the key: the caller adds where and which key.
type keyValue interface {
	set(text string) error
	// setNode never sees a null node: null means "not set".
	setNode(n *yaml.Node) error
	// String is the canonical text of the current value: what the docs and
	// --help show, and what unsupported keys are compared by.
	String() string
	// typeName is the flag's type in --help.
	typeName() string
}

// shownNode renders a YAML value for "got ..." in messages.
func shownNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	if n.Tag == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// scalarText returns a scalar node's text, or an error naming what it is.
func scalarText(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want %s, got %s", want, shownNode(n))
	}
	return n.Value, nil
}

type stringValue struct{ p *string }

func (v stringValue) set(s string) error { *v.p = s; return nil }
func (v stringValue) setNode(n *yaml.Node) error {
	s, err := scalarText(n, "a string")
	if err != nil {
		return err
	}
	*v.p = s
	return nil
}
func (v stringValue) String() string   { return *v.p }
func (v stringValue) typeName() string { return "string" }

type boolValue struct{ p *bool }

func (v boolValue) set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		*v.p = true
	case "false", "0":
		*v.p = false
	default:
		return fmt.Errorf("want true or false, got %q", s)
	}
	return nil
}

func (v boolValue) setNode(n *yaml.Node) error {
	// YAML 1.2 booleans only: "yes", "on" and 1 are not booleans there, and
	// guessing would hide a typo.
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!bool" && n.Tag != "!!str") {
		return fmt.Errorf("want true or false, got %s", shownNode(n))
	}
	switch strings.ToLower(n.Value) {
	case "true":
		*v.p = true
	case "false":
		*v.p = false
	default:
		return fmt.Errorf("want true or false, got %s", shownNode(n))
	}
	return nil
}
func (v boolValue) String() string   { return strconv.FormatBool(*v.p) }
func (v boolValue) typeName() string { return "bool" }

// integer is the set of integer field types.
type integer interface {
	~int | ~int64 | ~uint32 | ~uint64
}

// intValue is a plain integer. unit, if set, is said in messages
// ("milliseconds", "bytes").
type intValue[T integer] struct {
	p    *T
	unit string
}

func (v intValue[T]) want() string {
	if v.unit == "" {
		return "an integer"
	}
	return "an integer (" + v.unit + ")"
}

func (v intValue[T]) set(s string) error {
	n, err := parseInteger[T](strings.TrimSpace(s), v.want())
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v intValue[T]) setNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return fmt.Errorf("want %s, got %s", v.want(), shownNode(n))
	}
	return v.set(n.Value)
}
func (v intValue[T]) String() string { return fmt.Sprint(*v.p) }
func (v intValue[T]) typeName() string {
	if v.unit != "" {
		return v.unit
	}
	return "int"
}

// parseInteger parses base-10 text into T, saying what was wanted if it
// cannot.
func parseInteger[T integer](s, want string) (T, error) {
	var zero T
	if signed := zero-1 < 0; signed {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || int64(T(n)) != n {
			if err == nil || isRangeErr(err) {
				return 0, fmt.Errorf("%s is out of range", s)
			}
			return 0, fmt.Errorf("want %s, got %q", want, s)
		}
		return T(n), nil
	}
	if strings.HasPrefix(s, "-") {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil || isRangeErr(err) {
			return 0, fmt.Errorf("want a non-negative integer, got %s", s)
		}
		return 0, fmt.Errorf("want %s, got %q", want, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || uint64(T(n)) != n {
		if err == nil || isRangeErr(err) {
			return 0, fmt.Errorf("%s is out of range", s)
		}
		return 0, fmt.Errorf("want %s, got %q", want, s)
	}
	return T(n), nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// unitValue is a duration written as an integer count of unit, as etcd
// writes heartbeat-interval and election-timeout (milliseconds) and
// auth-token-ttl (seconds).
type unitValue struct {
	p        *time.Duration
	unit     time.Duration
	unitName string
}

func (v unitValue) want() string { return "an integer (" + v.unitName + ")" }

func (v unitValue) set(s string) error {
	s = strings.TrimSpace(s)
	n, err := parseInteger[int64](s, v.want())
	if err != nil {
		if d, derr := time.ParseDuration(s); derr == nil && d >= 0 && d%v.unit == 0 {
			return fmt.Errorf("want %s, got %q: write %d", v.want(), s, d/v.unit)
		}
		return err
	}
	if n < 0 {
		return fmt.Errorf("want a non-negative integer (%s), got %d", v.unitName, n)
	}
	if n > math.MaxInt64/int64(v.unit) {
		return fmt.Errorf("%d %s is out of range", n, v.unitName)
	}
	*v.p = time.Duration(n) * v.unit
	return nil
}

func (v unitValue) setNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return fmt.Errorf("want %s, got %s", v.want(), shownNode(n))
	}
	return v.set(n.Value)
}
func (v unitValue) String() string   { return strconv.FormatInt(int64(*v.p/v.unit), 10) }
func (v unitValue) typeName() string { return v.unitName }

// durationValue is a Go duration with a unit ("5s", "2h").
type durationValue struct {
	p       *time.Duration
	example string // a value to show in messages, e.g. "5s"
}

func (v durationValue) set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a duration with a unit, such as %q, got %q", v.example, s)
	}
	*v.p = d
	return nil
}

func (v durationValue) setNode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if n.Value == "0" { // zero in any unit
			*v.p = 0
			return nil
		}
		// etcd's file decodes durations as integer nanoseconds: say so
		// rather than read 5000000000 as 5s or 5 as 5ns.
		msg := fmt.Sprintf("want a duration with a unit, such as %q, got %s", v.example, n.Value)
		if ns, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			msg += fmt.Sprintf(" (etcd reads a bare number here as nanoseconds: %s)", formatDuration(time.Duration(ns)))
		}
		return errors.New(msg)
	}
	s, err := scalarText(n, "a duration")
	if err != nil {
		return err
	}
	return v.set(s)
}
func (v durationValue) String() string   { return formatDuration(*v.p) }
func (v durationValue) typeName() string { return "duration" }

// formatDuration is time.Duration.String without the zero tails: "2h", not
// "2h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// listValue is a list of strings, written comma-separated (etcd's form) or,
// in YAML, also as a sequence. Items are trimmed; empty items dropped.
type listValue struct{ p *[]string }

func (v listValue) set(s string) error {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*v.p = out
	return nil
}

func (v listValue) setNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return v.set(n.Value)
	case yaml.SequenceNode:
		var out []string
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("want a comma-separated string or a list of strings, got a list holding %s", shownNode(item))
			}
			if s := strings.TrimSpace(item.Value); s != "" && item.Tag != "!!null" {
				out = append(out, s)
			}
		}
		*v.p = out
		return nil
	}
	return fmt.Errorf("want a comma-separated string or a list of strings, got %s", shownNode(n))
}
func (v listValue) String() string   { return strings.Join(*v.p, ",") }
func (v listValue) typeName() string { return "strings" }
