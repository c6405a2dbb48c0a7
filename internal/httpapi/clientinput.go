package httpapi

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/social"
)

// noIntrospection is the gqlgen extension that refuses, as a validation
// error, an operation that asks for __schema or __type while introspection
// is off: without it the generated code fails the field as an internal
// error.
type noIntrospection struct{}

var (
	_ graphql.HandlerExtension        = noIntrospection{}
	_ graphql.OperationContextMutator = noIntrospection{}
)

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	for _, f := range rootFields(oc) {
		if f == "__schema" || f == "__type" {
			err := gqlerror.Errorf("introspection is disabled on this server")
			errcode.Set(err, errcode.ValidationFailed)
			return err
		}
	}
	return nil
}

// exactEnums is the gqlgen extension that refuses with BAD_USER_INPUT an
// enum value given in a variable in another case than the schema's
// ("like" for LIKE). Enum values are case-sensitive, but the parser's check
// of variables ignores case, and the generated code then fails to read the
// value as an internal error.
type exactEnums struct{ schema *ast.Schema }

var (
	_ graphql.HandlerExtension        = exactEnums{}
	_ graphql.OperationContextMutator = exactEnums{}
)

func (exactEnums) ExtensionName() string                   { return "ExactEnums" }
func (exactEnums) Validate(graphql.ExecutableSchema) error { return nil }

func (e exactEnums) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	for _, def := range oc.Operation.VariableDefinitions {
		if value, enum := e.misCased(def.Type, oc.Variables[def.Variable]); enum != "" {
			return &gqlerror.Error{
				Message:    fmt.Sprintf("variable $%s: %q is not a %s (enum values are case-sensitive)", def.Variable, value, enum),
				Extensions: map[string]any{"code": string(social.CodeBadUserInput), "field": def.Variable},
			}
		}
	}
	return nil
}

// misCased returns the first enum value in v, a variable's value of type
// t, that the schema does not name exactly, and its enum's name.
func (e exactEnums) misCased(t *ast.Type, v any) (value, enum string) {
	if v == nil {
		return "", ""
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return e.misCased(t.Elem, v) // one value stands for a list of one
		}
		for _, item := range list {
			if value, enum := e.misCased(t.Elem, item); enum != "" {
				return value, enum
			}
		}
		return "", ""
	}
	def := e.schema.Types[t.NamedType]
	if def == nil {
		return "", ""
	}
	switch def.Kind {
	case ast.Enum:
		if s, ok := v.(string); ok && def.EnumValues.ForName(s) == nil {
			return s, def.Name
		}
	case ast.InputObject:
		if m, ok := v.(map[string]any); ok {
			for _, f := range def.Fields {
				if value, enum := e.misCased(f.Type, m[f.Name]); enum != "" {
					return value, enum
				}
			}
		}
	}
	return "", ""
}
