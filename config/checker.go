package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// checker is the provider.Checker of one section entry: it turns the
// entry's relative keys into lines of the file.
type checker struct {
	p              *parser
	path           string // "ibm.0"
	section, entry string // "ibm", the entry's name
}

var _ provider.Checker = (*checker)(nil)

// envName is what a shell accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// conventionalName is how variables are named by convention: capitals
// and digits in short words joined by '_'. Generated credentials are long
// runs of mixed case, so a name of this shape can be quoted back; any
// other one might be a secret pasted in the wrong field.
var conventionalName = regexp.MustCompile(`^[A-Z][A-Z0-9]{0,15}(_[A-Z0-9]{1,16})*$`)

func conventionalEnvName(s string) bool { return len(s) <= 64 && conventionalName.MatchString(s) }

// unreadable says why a file cannot be read without naming it: the error
// of the system call, without the path that fs.PathError adds.
func unreadable(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err.Error()
}

func (c *checker) at(key string) string {
	if key == "" {
		return c.path
	}
	return c.path + "." + key
}

func (c *checker) Errorf(key, format string, args ...any) {
	c.p.errorf(c.p.line(c.at(key)), format, args...)
}

func (c *checker) Has(key string) bool { return c.p.has(c.at(key)) }

func (c *checker) File(key string, path *string) {
	if *path == "" {
		return
	}
	if !filepath.IsAbs(*path) {
		*path = filepath.Join(filepath.Dir(c.p.file), *path)
	}
	// Credential files are read by the providers, not here; their content
	// takes part in the hash so that a reload after rotating one is not
	// skipped.
	b, err := readKeyFile(*path)
	if err != nil {
		// The path is not shown: a key pasted here instead of a path is
		// no file either.
		c.Errorf(key, "%s.%s cannot be read (%s); the path is not shown, in case it is a credential pasted in its place", c.section, key, unreadable(err))
		return
	}
	fmt.Fprintf(c.p.credentials, "\x00%d:%s", len(b), b)
}

// Secret checks that at most one way to give the secret is used (exactly
// one when required) and moves the secret into r.Value whichever way it
// was given, so that providers have a single place to read it from.
func (c *checker) Secret(r provider.SecretRef, required bool) {
	var given []string
	for _, k := range []struct {
		key string
		set bool
	}{
		{r.Key, *r.Value != ""},
		{r.Key + "_file", r.File != ""},
		{r.Key + "_env", r.Env != ""},
	} {
		if k.set || c.Has(k.key) {
			given = append(given, k.key)
		}
	}
	switch {
	case len(given) == 0 && required:
		c.Errorf("", "%s entry %q has no %s; set one of %s_env, %s_file or %s",
			c.section, c.entry, r.What, r.Key, r.Key, r.Key)
	case len(given) > 1:
		c.Errorf(given[1], "%s entry %q sets %s; set only one of %s, %s_file and %s_env",
			c.section, c.entry, strings.Join(given, " and "), r.Key, r.Key, r.Key)
	case len(given) == 1:
		c.resolve(r, given[0])
	}
	if v := r.Value.Value(); v != "" {
		fmt.Fprintf(c.p.credentials, "\x00%d:%s", len(v), v)
	}
}

func (c *checker) resolve(r provider.SecretRef, key string) {
	switch {
	case r.File != "":
		file := r.File
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(c.p.file), file)
		}
		v, err := readKeyFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			// The value is not quoted: a secret pasted here instead of
			// a path names no file either.
			c.Errorf(key, "%s.%s_file names no existing file (the value is not shown, in case it is the %s itself)", c.section, r.Key, r.What)
			return
		}
		if err != nil {
			c.Errorf(key, "%s.%s_file cannot be read (%s); the path is not shown, in case it is the %s itself",
				c.section, r.Key, unreadable(err), r.What)
			return
		}
		if v == "" {
			c.Errorf(key, "%s.%s_file %q is empty; it must contain the %s", c.section, r.Key, file, r.What)
			return
		}
		*r.Value = provider.Secret(v)
	case r.Env != "":
		if !envName.MatchString(r.Env) {
			c.Errorf(key, "%s.%s_env must be the name of an environment variable (letters, digits and '_'); the value is not shown, in case it is the %s itself: put that in the variable",
				c.section, r.Key, r.What)
			return
		}
		v := strings.TrimSpace(c.p.getenv(r.Env))
		switch {
		case v == "" && conventionalEnvName(r.Env):
			c.Errorf(key, "%s.%s_env names the environment variable %q, which is unset or empty; set it or use %s_file",
				c.section, r.Key, r.Env, r.Key)
			return
		case v == "":
			c.Errorf(key, "%s.%s_env names an environment variable that is unset or empty; set it or use %s_file "+
				"(the name is not shown: it is not in capitals and underscores, such as IBM_CLOUD_API_KEY, and may be the %s itself)",
				c.section, r.Key, r.Key, r.What)
			return
		}
		*r.Value = provider.Secret(v)
	case *r.Value == "":
		c.Errorf(key, "%s is empty", display(c.at(key)))
	}
}
