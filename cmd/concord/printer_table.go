package main

import (
	"io"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/text/width"
)

// tablePrinter draws the member list and the endpoint reports as boxed
// tables, character for character as etcdctl's tablewriter does: headers
// upper-cased and centred, cells right-aligned, one space of padding.
type tablePrinter struct {
	unsupportedPrinter // everything else
	out                io.Writer
}

var _ printer = (*tablePrinter)(nil)

func (p *tablePrinter) MemberList(r *clientv3.MemberListResponse) error {
	hdr, rows := memberListTable(r)
	writeTable(p.out, hdr, rows)
	return nil
}

func (p *tablePrinter) EndpointHealth(hs []epHealth) error {
	hdr, rows := endpointHealthTable(hs)
	writeTable(p.out, hdr, rows)
	return nil
}

func (p *tablePrinter) EndpointStatus(sts []epStatus) error {
	hdr, rows := endpointStatusTable(sts)
	writeTable(p.out, hdr, rows)
	return nil
}

func (p *tablePrinter) EndpointHashKV(hs []epHashKV) error {
	hdr, rows := endpointHashKVTable(hs)
	writeTable(p.out, hdr, rows)
	return nil
}

// writeTable draws hdr over rows. A cell with newlines spans several lines;
// cells are trimmed of surrounding spaces; a header has '_' shown as ' '.
func writeTable(w io.Writer, hdr []string, rows [][]string) {
	title := make([]string, len(hdr))
	widths := make([]int, len(hdr))
	for i, h := range hdr {
		title[i] = strings.ToUpper(strings.TrimSpace(strings.ReplaceAll(h, "_", " ")))
		widths[i] = displayWidth(title[i])
	}
	cells := make([][][]string, len(rows)) // row, column, line
	for r, row := range rows {
		cells[r] = make([][]string, len(hdr))
		for c := range hdr {
			var text string
			if c < len(row) {
				text = row[c]
			}
			lines := strings.Split(text, "\n")
			for i, l := range lines {
				lines[i] = strings.TrimSpace(l)
				widths[c] = max(widths[c], displayWidth(lines[i]))
			}
			cells[r][c] = lines
		}
	}

	var b strings.Builder
	rule := func(left, mid, right string) {
		b.WriteString(left)
		for c, n := range widths {
			if c > 0 {
				b.WriteString(mid)
			}
			b.WriteString(strings.Repeat("─", n+2))
		}
		b.WriteString(right + "\n")
	}
	line := func(texts []string, align func(string, int) string) {
		b.WriteString("│")
		for c, t := range texts {
			b.WriteString(" " + align(t, widths[c]) + " │")
		}
		b.WriteString("\n")
	}

	rule("┌", "┬", "┐")
	line(title, padCenter)
	if len(rows) > 0 {
		rule("├", "┼", "┤")
	}
	for _, row := range cells {
		height := 0
		for _, lines := range row {
			height = max(height, len(lines))
		}
		for i := range height {
			texts := make([]string, len(row))
			for c, lines := range row {
				if i < len(lines) {
					texts[c] = lines[i]
				}
			}
			line(texts, padLeft)
		}
	}
	rule("└", "┴", "┘")
	io.WriteString(w, b.String())
}

// padCenter centres s in n columns, the odd space going to the right.
func padCenter(s string, n int) string {
	gap := max(n-displayWidth(s), 0)
	return strings.Repeat(" ", gap/2) + s + strings.Repeat(" ", gap-gap/2)
}

// padLeft right-aligns s in n columns.
func padLeft(s string, n int) string {
	return strings.Repeat(" ", max(n-displayWidth(s), 0)) + s
}

// displayWidth counts the terminal columns of s: East Asian wide and
// full-width characters take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
