package main

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
)

// A mutant is one file's source with one change.
type mutant struct {
	file string // absolute path of the file it replaces
	line int
	col  int
	desc string
	src  []byte
}

// flips maps each operator to the one a mutant puts in its place.
var flips = map[token.Token]token.Token{
	token.EQL: token.NEQ, token.NEQ: token.EQL,
	token.LSS: token.LEQ, token.LEQ: token.LSS,
	token.GTR: token.GEQ, token.GEQ: token.GTR,
	token.LAND: token.LOR, token.LOR: token.LAND,
	token.ADD: token.SUB, token.SUB: token.ADD,
}

// mutants lists the mutants of one file, in source order.
func mutants(path string, src []byte) ([]mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []mutant
	add := func(pos, end token.Pos, repl, desc string) {
		p, e := fset.Position(pos), fset.Position(end)
		b := make([]byte, 0, len(src)+len(repl))
		b = append(b, src[:p.Offset]...)
		b = append(b, repl...)
		b = append(b, src[e.Offset:]...)
		out = append(out, mutant{file: path, line: p.Line, col: p.Column, desc: desc, src: b})
	}
	text := func(n ast.Node) string {
		return string(src[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
	}

	// errResults is, for the innermost function being walked, how many results it has when the last is
	// an error, or 0.
	var errResults []int
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			if n.Body == nil {
				return false
			}
			// A declared function is the outermost: the stack starts again with it.
			errResults = []int{errorResults(n.Type)}
			ast.Inspect(n.Body, visit)
			return false
		case *ast.FuncLit:
			errResults = append(errResults, errorResults(n.Type))
			ast.Inspect(n.Body, visit)
			errResults = errResults[:len(errResults)-1]
			return false
		case *ast.BinaryExpr:
			to, ok := flips[n.Op]
			if !ok || (n.Op == token.ADD && (isString(n.X) || isString(n.Y))) {
				break
			}
			end := n.OpPos + token.Pos(len(n.Op.String()))
			add(n.OpPos, end, to.String(), fmt.Sprintf("%s → %s", n.Op, to))
		case *ast.IfStmt:
			add(n.Cond.Pos(), n.Cond.End(), "!("+text(n.Cond)+")", fmt.Sprintf("if %s → if !(…)", short(text(n.Cond))))
		case *ast.ReturnStmt:
			// return f() of a function with several results cannot become return nil.
			if len(errResults) == 0 || errResults[len(errResults)-1] == 0 || len(n.Results) != errResults[len(errResults)-1] {
				break
			}
			last := n.Results[len(n.Results)-1]
			if id, ok := last.(*ast.Ident); ok && id.Name == "nil" {
				break
			}
			// An expression other than a name may hold the file's only use of an import (return
			// errors.New(…)): it stays in the mutant, never evaluated, so that the mutant still compiles.
			repl := "nil"
			if _, ok := last.(*ast.Ident); !ok {
				repl = "func() error { if false { _ = " + text(last) + " }; return nil }()"
			}
			add(last.Pos(), last.End(), repl, fmt.Sprintf("return %s → return nil", short(text(last))))
		case *ast.BlockStmt:
			deletions(n.List, add, text)
		case *ast.CaseClause:
			deletions(n.Body, add, text)
		case *ast.CommClause:
			deletions(n.Body, add, text)
		}
		return true
	}
	for _, d := range f.Decls {
		ast.Inspect(d, visit)
	}
	slices.SortStableFunc(out, func(a, b mutant) int {
		return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	return out, nil
}

// deletions adds a mutant deleting each statement of list that can go without breaking the build:
// calls, assignments to existing variables, increments, defers and sends.
func deletions(list []ast.Stmt, add func(pos, end token.Pos, repl, desc string), text func(ast.Node) string) {
	for _, s := range list {
		switch s := s.(type) {
		case *ast.ExprStmt, *ast.IncDecStmt, *ast.DeferStmt, *ast.GoStmt, *ast.SendStmt:
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				continue
			}
		default:
			continue
		}
		add(s.Pos(), s.End(), "", "delete "+short(text(s)))
	}
}

// errorResults returns how many results t has if the last is an error, or 0.
func errorResults(t *ast.FuncType) int {
	if t.Results == nil || len(t.Results.List) == 0 {
		return 0
	}
	if id, ok := t.Results.List[len(t.Results.List)-1].Type.(*ast.Ident); !ok || id.Name != "error" {
		return 0
	}
	n := 0
	for _, f := range t.Results.List {
		n += max(1, len(f.Names))
	}
	return n
}

func isString(e ast.Expr) bool {
	l, ok := e.(*ast.BasicLit)
	return ok && (l.Kind == token.STRING || l.Kind == token.CHAR)
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
