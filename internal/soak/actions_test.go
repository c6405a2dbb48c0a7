package soak

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// TestModelActions: the model (model_test.go) tells of every action kind,
// so that the property test checks a new action's notifications too
// (docs/adding-an-action.md).
func TestModelActions(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "model_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	told := map[social.Action]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 2 {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "tell" {
			return true
		}
		if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			told[social.Action(s)] = true
		}
		return true
	})
	for _, a := range social.Actions() {
		if !told[a] {
			t.Errorf("the model never tells of %s: teach world.act to do it", a)
		}
	}
}
