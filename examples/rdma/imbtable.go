package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hpcship/hpcship/mpi/imb"
)

// printIMB prints every IMB result table in r as an aligned table, one at a time as the scanner reads
// them, and returns how many it printed.
func printIMB(w io.Writer, r io.Reader) (int, error) {
	sc := imb.NewScanner(r)
	n := 0
	for sc.Scan() {
		b := sc.Benchmark()
		if n > 0 {
			fmt.Fprintln(w)
		}
		n++
		title := b.Name
		if b.Multi {
			title = "Multi-" + title
		}
		fmt.Fprintf(w, "%s, %d processes", title, b.Processes)
		if b.Groups > 1 {
			fmt.Fprintf(w, " in %d groups", b.Groups)
		}
		if b.Mode != "" {
			fmt.Fprintf(w, ", %s", b.Mode)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
		header := make([]string, len(b.Columns))
		for i, c := range b.Columns {
			header[i] = c.String()
		}
		fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
		for _, row := range b.Rows {
			fmt.Fprintln(tw, strings.Join(cells(b.Columns, row), "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return n, err
		}
	}
	return n, sc.Err()
}

// cells renders a row's values in column order. A size IMB could not measure shows its failure in place
// of the numbers.
func cells(cols []imb.Column, r imb.Row) []string {
	out := make([]string, 0, len(cols))
	for _, c := range cols {
		if r.Failure != "" && c != imb.ColumnBytes && c != imb.ColumnGroup {
			out = append(out, string(r.Failure))
			break
		}
		out = append(out, r.Cell(c))
	}
	return out
}
