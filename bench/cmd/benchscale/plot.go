package main

import (
	"fmt"
	"image/color"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"os"
)

// plotCurves draws latency against the size of eval_results, log-log, one
// line per operation, in four panels: the reads' p50, the reads' p99, the
// run summary (by run size) and RecordEvalRun, the last two with p50 solid
// and p99 dashed.
func plotCurves(ss []sample, path string) error {
	isRead := func(op string) bool {
		return !strings.HasPrefix(op, "RecordEvalRun") && !strings.HasPrefix(op, "GetEvalRunSummary")
	}
	panels := [][]struct {
		title    string
		keep     func(string) bool
		p50, p99 bool
	}{
		{
			{"Reads (uncached), p50", isRead, true, false},
			{"Reads (uncached), p99", isRead, false, true},
		},
		{
			{"GetEvalRunSummary: p50 solid, p99 dashed", func(op string) bool { return strings.HasPrefix(op, "GetEvalRunSummary") }, true, true},
			{"RecordEvalRun: p50 solid, p99 dashed", func(op string) bool { return strings.HasPrefix(op, "RecordEvalRun") }, true, true},
		},
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, row := range panels {
		for _, pn := range row {
			p, err := panel(ss, pn.title, pn.keep, pn.p50, pn.p99)
			if err != nil {
				return err
			}
			plots[i] = append(plots[i], p)
		}
	}
	const w, h = 24 * vg.Centimeter, 18 * vg.Centimeter
	img := vgimg.New(2*w, 2*h)
	dc := draw.New(img)
	pad := vg.Millimeter * 6
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: pad, PadY: pad, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	return savePNG(img, path)
}

func panel(ss []sample, title string, keep func(op string) bool, withP50, withP99 bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "eval_results rows"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Add(plotter.NewGrid())
	var names []string
	for _, s := range ss {
		if keep(s.op) && !slices.Contains(names, s.op) {
			names = append(names, s.op)
		}
	}
	for i, name := range names {
		var p50, p99 plotter.XYs
		for _, s := range ss {
			if s.op == name {
				p50 = append(p50, plotter.XY{X: float64(s.size), Y: float64(s.p50) / 1e6})
				p99 = append(p99, plotter.XY{X: float64(s.size), Y: float64(s.p99) / 1e6})
			}
		}
		c := plotutil.Color(i)
		if i >= 7 { // plotutil has seven soft colours; darken the rest
			r, g, b, _ := plotutil.Color(i).RGBA()
			c = color.RGBA{R: uint8(r >> 9), G: uint8(g >> 9), B: uint8(b >> 9), A: 255}
		}
		for _, line := range []struct {
			on     bool
			xys    plotter.XYs
			dashes []vg.Length
		}{{withP50, p50, nil}, {withP99, p99, []vg.Length{vg.Points(4), vg.Points(3)}}} {
			if !line.on {
				continue
			}
			l, pts, err := plotter.NewLinePoints(line.xys)
			if err != nil {
				return nil, fmt.Errorf("plot %s: %w", name, err)
			}
			l.Color, l.Dashes, pts.Color, pts.Shape = c, line.dashes, c, plotutil.Shape(i)
			p.Add(l, pts)
			if line.dashes == nil || !withP50 {
				p.Legend.Add(name, l, pts)
			}
		}
	}
	return p, nil
}

func savePNG(img *vgimg.Canvas, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
