package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/pulse-social/pulse/internal/social"
)

// CostLimits bound what a GraphQL document and each response may cost,
// beyond depth and complexity. A zero field means its default.
type CostLimits struct {
	// Document caps a document before it is validated.
	Document DocumentLimits
	// MaxErrors bounds the errors of one response, validation errors
	// included; default DefaultMaxErrors.
	MaxErrors int
	// MaxResolvedFields is the resolver budget: the fields one response
	// (one event of a subscription) may resolve; default
	// DefaultMaxResolvedFields.
	MaxResolvedFields int
	// MaxResponseBytes bounds one response (one event of a
	// subscription); default DefaultMaxResponseBytes.
	MaxResponseBytes int
}

func (c CostLimits) withDefaults() CostLimits {
	c.Document = c.Document.withDefaults()
	c.MaxErrors = cmp.Or(c.MaxErrors, DefaultMaxErrors)
	c.MaxResolvedFields = cmp.Or(c.MaxResolvedFields, DefaultMaxResolvedFields)
	c.MaxResponseBytes = cmp.Or(c.MaxResponseBytes, DefaultMaxResponseBytes)
	return c
}

// DocumentLimits cap a GraphQL document before gqlparser validates it, so
// that validation (quadratic in the worst case: OverlappingFieldsCanBeMerged)
// stays cheap. A document over a cap is refused with gqlgen's
// GRAPHQL_VALIDATION_FAILED (HTTP 422), as validation failures are. A zero
// field means its default.
type DocumentLimits struct {
	// Aliases caps the fields that have an alias; default 100.
	Aliases int
	// Fields caps the field selections, each fragment counted every time
	// it is spread; default 500. Validation's work grows with its square:
	// 500 fields that all conflict take about 12 MB and 20 ms to refuse.
	Fields int
	// Fragments caps fragment definitions, spreads and inline fragments;
	// default 100.
	Fragments int
	// Directives caps the directives; default 50.
	Directives int
}

// Defaults of the cost limits. A full page of 100 notifications with
// every field costs about 1,300, and so does a post with its default pages
// of comments and reactions: DefaultComplexityLimit admits a few of them.
const (
	DefaultComplexityLimit   = 5000
	DefaultMaxAliases        = 100
	DefaultMaxFields         = 500
	DefaultMaxFragments      = 100
	DefaultMaxDirectives     = 50
	DefaultMaxErrors         = 20
	DefaultMaxResolvedFields = 10_000
	DefaultMaxResponseBytes  = 4 << 20
)

func (l DocumentLimits) withDefaults() DocumentLimits {
	l.Aliases = cmp.Or(l.Aliases, DefaultMaxAliases)
	l.Fields = cmp.Or(l.Fields, DefaultMaxFields)
	l.Fragments = cmp.Or(l.Fragments, DefaultMaxFragments)
	l.Directives = cmp.Or(l.Directives, DefaultMaxDirectives)
	return l
}

// documentLimits is the gqlgen extension that enforces DocumentLimits. It
// runs before gqlgen parses and validates (an OperationParameterMutator),
// so it parses the document itself, under the same token limit; a
// document in the query cache passed it already.
type documentLimits struct {
	limits     DocumentLimits
	tokenLimit int
	cache      graphql.Cache[*ast.QueryDocument]
}

var (
	_ graphql.HandlerExtension          = documentLimits{}
	_ graphql.OperationParameterMutator = documentLimits{}
)

func (documentLimits) ExtensionName() string                   { return "DocumentLimits" }
func (documentLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (d documentLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if _, ok := d.cache.Get(ctx, params.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, d.tokenLimit)
	if err != nil {
		return nil // gqlgen parses again and reports it
	}
	var c docCounter
	c.document(doc)
	for _, over := range []struct {
		what       string
		count, max int
	}{
		{"aliases", c.aliases, d.limits.Aliases},
		{"fields (fragments counted where spread)", c.fields, d.limits.Fields},
		{"fragments", c.fragments, d.limits.Fragments},
		{"directives", c.directives, d.limits.Directives},
	} {
		if over.count > over.max {
			err := gqlerror.Errorf("the document has %d %s, more than the limit of %d", over.count, over.what, over.max)
			err.Extensions = map[string]any{"code": errcode.ValidationFailed, "limit": over.max}
			return err
		}
	}
	return nil
}

// docCounter counts what DocumentLimits caps in one document.
type docCounter struct {
	aliases, fields, fragments, directives int
	doc                                    *ast.QueryDocument
	// spread memoizes the fields of each fragment, so that counting is
	// linear in the document however often fragments are spread.
	spread map[string]int
}

func (c *docCounter) document(doc *ast.QueryDocument) {
	c.doc, c.spread = doc, map[string]int{}
	for _, op := range doc.Operations {
		c.directives += len(op.Directives)
		for _, v := range op.VariableDefinitions {
			c.directives += len(v.Directives)
		}
		c.fields = satAdd(c.fields, c.selections(op.SelectionSet))
	}
	for _, f := range doc.Fragments {
		c.fragments++
		c.directives += len(f.Directives)
		c.fragmentFields(f.Name)
	}
}

// selections returns the fields of set, each spread fragment counted in
// full, and counts aliases, fragments and directives of set (each
// fragment definition's own once, in fragmentFields).
func (c *docCounter) selections(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != s.Name {
				c.aliases++
			}
			c.directives += len(s.Directives)
			n = satAdd(n, satAdd(1, c.selections(s.SelectionSet)))
		case *ast.InlineFragment:
			c.fragments++
			c.directives += len(s.Directives)
			n = satAdd(n, c.selections(s.SelectionSet))
		case *ast.FragmentSpread:
			c.fragments++
			c.directives += len(s.Directives)
			n = satAdd(n, c.fragmentFields(s.Name))
		}
	}
	return n
}

func (c *docCounter) fragmentFields(name string) int {
	if n, ok := c.spread[name]; ok {
		return n
	}
	c.spread[name] = 0 // a cycle (validation refuses them) counts for nothing
	n := 0
	if f := c.doc.Fragments.ForName(name); f != nil {
		n = c.selections(f.SelectionSet)
	}
	c.spread[name] = n
	return n
}

// satAdd adds two counts that are not negative, saturating instead of
// overflowing (fragments spread in a chain multiply).
func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// cappedRules returns gqlparser's default validation rules, reporting at
// most maxErrors errors per document, the last of them saying that more
// were left out: a document with many conflicting fields makes errors by
// the thousand.
func cappedRules(maxErrors int) func() *rules.Rules {
	return func() *rules.Rules {
		rs := rules.NewDefaultRules()
		var reported int
		for name, rule := range rs.GetInner() {
			rs.ReplaceRule(name, func(observers *core.Events, addError core.AddErrFunc) {
				rule(observers, func(options ...core.ErrorOption) {
					reported++
					switch {
					case reported < maxErrors:
						addError(options...)
					case reported == maxErrors:
						addError(core.Message("too many validation errors: only the first %d are shown", maxErrors-1))
					}
				})
			})
		}
		return rs
	}
}

// complexityLimit is the gqlgen extension that refuses, before it runs, an
// operation that costs more than limit (graph.Complexity prices each list
// field by its page size). Its error carries the limit and the cost.
type complexityLimit struct {
	limit int
	es    graphql.ExecutableSchema
}

var (
	_ graphql.HandlerExtension        = (*complexityLimit)(nil)
	_ graphql.OperationContextMutator = (*complexityLimit)(nil)
)

func (*complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	cost := complexity.Calculate(ctx, c.es, oc.Operation, oc.Variables)
	if cost <= c.limit {
		return nil
	}
	return &gqlerror.Error{
		Message:    fmt.Sprintf("operation has complexity %d, which exceeds the limit of %d", cost, c.limit),
		Extensions: map[string]any{"code": social.CodeComplexityLimitExceeded, "limit": c.limit, "complexity": cost},
	}
}

// responseLimits is the gqlgen extension that bounds each response (each
// event of a subscription): it counts the fields resolved for it and cuts
// the response at maxFields, a second line of defence behind the
// complexity limit; it keeps at most maxErrors errors; and it replaces a
// response bigger than maxBytes with an error.
type responseLimits struct {
	maxFields, maxErrors, maxBytes int
}

var (
	_ graphql.HandlerExtension    = responseLimits{}
	_ graphql.ResponseInterceptor = responseLimits{}
	_ graphql.FieldInterceptor    = responseLimits{}
)

func (responseLimits) ExtensionName() string                   { return "ResponseLimits" }
func (responseLimits) Validate(graphql.ExecutableSchema) error { return nil }

// fieldBudget counts the fields resolved for one response.
type fieldBudget struct {
	max  int64
	used atomic.Int64
}

type fieldBudgetKey struct{}

func (l responseLimits) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	if b, ok := ctx.Value(fieldBudgetKey{}).(*fieldBudget); ok && b.used.Add(1) > b.max {
		// A field past the budget fails without running; the response
		// then becomes one error that says so.
		return nil, &gqlerror.Error{
			Message:    "over the resolver budget",
			Extensions: map[string]any{"code": social.CodeResourceLimitExceeded},
		}
	}
	return next(ctx)
}

func (l responseLimits) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	b := &fieldBudget{max: int64(l.maxFields)}
	resp := next(context.WithValue(ctx, fieldBudgetKey{}, b))
	if resp == nil {
		return nil
	}
	if b.used.Load() > b.max {
		return limitResponse(fmt.Sprintf("the operation resolves more than %d fields, the limit of one response", l.maxFields), l.maxFields)
	}
	if n := len(resp.Errors); n > l.maxErrors {
		resp.Errors = append(resp.Errors[:l.maxErrors:l.maxErrors], &gqlerror.Error{
			Message:    fmt.Sprintf("%d more errors left out: at most %d are shown", n-l.maxErrors, l.maxErrors),
			Extensions: map[string]any{"code": social.CodeResourceLimitExceeded, "limit": l.maxErrors},
		})
	}
	if size := responseSize(resp); size > l.maxBytes {
		return limitResponse(fmt.Sprintf("the response would be %d bytes or more, more than the limit of %d", size, l.maxBytes), l.maxBytes)
	}
	return resp
}

func limitResponse(msg string, limit int) *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    msg,
		Extensions: map[string]any{"code": social.CodeResourceLimitExceeded, "limit": limit},
	}}}
}

// responseSize is about the size of resp as JSON: its data, errors and
// extensions (the few bytes of the envelope not counted).
func responseSize(resp *graphql.Response) int {
	n := len(resp.Data)
	if len(resp.Errors) == 0 && len(resp.Extensions) == 0 {
		return n // most responses, every event of a subscription: nothing to encode
	}
	for _, v := range []any{resp.Errors, resp.Extensions} {
		b, err := json.Marshal(v)
		if err != nil {
			return math.MaxInt // the transport cannot write it either
		}
		n = satAdd(n, len(b))
	}
	return n
}
