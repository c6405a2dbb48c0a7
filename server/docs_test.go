package main

// The repository's docs are its contract: these tests fail when a flag, a
// schema field, a close code or an error code exists in the code but not in
// docs/, or the other way round, so that a change to one is a change to
// both.

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gqlast "github.com/vektah/gqlparser/v2/ast"
	gqlparser "github.com/vektah/gqlparser/v2/parser"
)

// mustRead returns the text of the file at path, relative to server/.
func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestDocsConfiguration: every flag has a row in docs/configuration.md
// with its environment variable and its default as --help prints it, and
// every flag that page names exists.
func TestDocsConfiguration(t *testing.T) {
	doc := mustRead(t, "../docs/configuration.md")
	fs := flags(new(config), new(string), new(string), &envDefaults{getenv: func(string) string { return "" }})
	envOf := regexp.MustCompile(`\(env ([A-Z0-9_]+)[);]`)
	fs.VisitAll(func(f *flag.Flag) {
		m := envOf.FindStringSubmatch(f.Usage)
		if m == nil {
			t.Errorf("--%s: its usage names no environment variable: %q", f.Name, f.Usage)
			return
		}
		row := tableRow(doc, "`--"+f.Name+"`")
		switch {
		case row == "":
			t.Errorf("docs/configuration.md has no table row starting with `--%s`", f.Name)
		case !strings.Contains(row, "`"+m[1]+"`"):
			t.Errorf("docs/configuration.md: the row of --%s does not name `%s`", f.Name, m[1])
		case f.DefValue != "" && !strings.Contains(row, "`"+f.DefValue+"`"):
			t.Errorf("docs/configuration.md: the row of --%s does not give its default `%s`", f.Name, f.DefValue)
		}
	})
	for _, m := range regexp.MustCompile("`--([a-z0-9-]+)").FindAllStringSubmatch(doc, -1) {
		if fs.Lookup(m[1]) == nil {
			t.Errorf("docs/configuration.md names --%s, which is no flag", m[1])
		}
	}
}

// tableRow returns the line of doc that is a table row whose first cell is
// cell, or "".
func tableRow(doc, cell string) string {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| "+cell+" |") {
			return line
		}
	}
	return ""
}

// TestDocsSchema: every type of schema.graphqls has a section in
// docs/api.md (a heading naming it in backticks) that lists each of its
// fields with arguments and type, or each of its enum values; the fields
// of an extension (extend type Query) belong to its type's section.
func TestDocsSchema(t *testing.T) {
	doc := mustRead(t, "../docs/api.md")
	schema, err := gqlparser.ParseSchema(&gqlast.Source{Name: "schema.graphqls", Input: mustRead(t, "../schema.graphqls")})
	if err != nil {
		t.Fatal(err)
	}
	for _, def := range append(schema.Definitions, schema.Extensions...) {
		section := docSection(doc, "`"+def.Name+"`")
		if section == "" {
			t.Errorf("docs/api.md has no heading naming `%s`", def.Name)
			continue
		}
		for _, f := range def.Fields {
			if sig := signature(f); !strings.Contains(section, "`"+sig+"`") {
				t.Errorf("docs/api.md: the section of %s does not show `%s`", def.Name, sig)
			}
		}
		for _, v := range def.EnumValues {
			if !strings.Contains(section, "`"+v.Name+"`") {
				t.Errorf("docs/api.md: the section of %s does not show `%s`", def.Name, v.Name)
			}
		}
	}
}

// signature is a field as docs/api.md shows it:
// name(arg: Type = default, ...): Type.
func signature(f *gqlast.FieldDefinition) string {
	var args []string
	for _, a := range f.Arguments {
		s := a.Name + ": " + a.Type.String()
		if a.DefaultValue != nil {
			s += " = " + a.DefaultValue.String()
		}
		args = append(args, s)
	}
	if len(args) == 0 {
		return f.Name + ": " + f.Type.String()
	}
	return f.Name + "(" + strings.Join(args, ", ") + "): " + f.Type.String()
}

// docSection returns the text from the first heading of doc that contains
// name up to the next heading, or "".
func docSection(doc, name string) string {
	lines := strings.Split(doc, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "#") || !strings.Contains(line, name) {
			continue
		}
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "#") {
			end++
		}
		return strings.Join(lines[i:end], "\n")
	}
	return ""
}

// TestDocsCodes: every close code and close reason that a socket's package
// defines as a constant is in that socket's close-code section of
// docs/api.md (a code as the first cell of a table row, a reason in double
// quotes and backticks), and every error code (a Code* constant) is the
// first cell of a row of its "Errors" table.
func TestDocsCodes(t *testing.T) {
	doc := mustRead(t, "../docs/api.md")
	errorTable := docSection(doc, "## Errors")
	plain := docSection(doc, "Close codes of the plain socket")
	graphQL := docSection(doc, "Close codes of the GraphQL websocket")
	sections := map[string]string{
		// The close codes both sockets share: each is in one section or both.
		"../internal/wspolicy": plain + graphQL,
		"../internal/plainws":  plain,
		"../internal/gqlws":    graphQL,
		"../internal/httpapi":  graphQL,
		"../internal/social":   "",
		"../graph":             "",
	}
	var checked int
	for dir, closes := range sections {
		for name, value := range constants(t, dir) {
			var section, want string
			switch {
			case strings.HasPrefix(strings.ToLower(name), "close") && isCloseCode(value):
				section, want = closes, "| `"+value+"` |"
			case strings.HasPrefix(name, "reason"):
				section, want = closes, "`\""+value+"\"`"
			case strings.HasPrefix(name, "Code") && value != "" && value == strings.ToUpper(value):
				section, want = errorTable, "| `"+value+"` |"
			default:
				continue
			}
			checked++
			if !strings.Contains(section, want) {
				t.Errorf("docs/api.md does not show %s where it should (%s in %s)", want, name, dir)
			}
		}
	}
	if checked < 20 {
		t.Errorf("found only %d codes and reasons: has the code moved?", checked)
	}
}

func isCloseCode(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1000 && n <= 4999
}

// constants returns the constants of the Go package in dir (tests and
// generated files left out) whose value is a literal, unquoted.
func constants(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	consts := map[string]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".generated.go") || strings.HasSuffix(path, "_gen.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						continue
					}
					v := lit.Value
					if lit.Kind == token.STRING {
						if v, err = strconv.Unquote(lit.Value); err != nil {
							tb.Fatal(err)
						}
					}
					consts[name.Name] = v
				}
			}
		}
	}
	return consts
}

// TestDocsLinks: every relative link in README.md and docs/*.md points to
// a file or directory that exists.
func TestDocsLinks(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		for _, m := range link.FindAllStringSubmatch(mustRead(t, page), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(page), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", page, m[1])
			}
		}
	}
}
