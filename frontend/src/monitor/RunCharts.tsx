// The runs page's charts: runs started / completed / failed per interval, and the p50 / p95
// duration, from the server's aggregate (…/runs/stats: the percentiles are computed there).
//
// Why uPlot: ~50 KB, no dependencies, canvas-drawn (thousands of points stay smooth),
// maintained for years and made for exactly this (time series); Recharts would bring
// ~400 KB of SVG components and D3 modules for two small charts.

import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { formatDuration } from './model';
import type { RunStats } from './productRuns';

const WIDTH = 560;
const HEIGHT = 180;

function Chart({ options, data, testId }: { options: Omit<uPlot.Options, 'width' | 'height'>; data: uPlot.AlignedData; testId: string }) {
  const box = useRef<HTMLDivElement | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(280, Math.min(WIDTH, el.clientWidth || WIDTH));
    const plot = new uPlot({ ...options, width, height: HEIGHT }, data, el);
    return () => {
      plot.destroy();
    };
  }, [options, data]);
  return <div className="runs-chart" ref={box} data-testid={testId} />;
}

const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;

export function RunCharts({ stats }: { stats: RunStats }) {
  const xs = stats.buckets.map((b) => b.start);
  const counts: uPlot.AlignedData = [xs, stats.buckets.map((b) => b.started), stats.buckets.map((b) => b.completed), stats.buckets.map((b) => b.failed)];
  const durations: uPlot.AlignedData = [xs, stats.buckets.map((b) => b.p50), stats.buckets.map((b) => b.p95)];
  const countOptions: Omit<uPlot.Options, 'width' | 'height'> = {
    title: 'Runs per interval',
    scales: { x: { time: true } },
    series: [
      {},
      { label: 'started', stroke: '#6366f1', width: 2 },
      { label: 'completed', stroke: '#16a34a', fill: 'rgba(22,163,74,0.15)', paths: bars },
      { label: 'failed', stroke: '#dc2626', fill: 'rgba(220,38,38,0.35)', paths: bars },
    ],
  };
  const durationOptions: Omit<uPlot.Options, 'width' | 'height'> = {
    title: 'Duration (p50 / p95)',
    scales: { x: { time: true } },
    axes: [{}, { values: (_u, ticks) => ticks.map((t) => formatDuration(t)), size: 60 }],
    series: [
      {},
      { label: 'p50', stroke: '#0ea5e9', width: 2, spanGaps: true, value: (_u, v) => (v == null ? '–' : formatDuration(v)) },
      { label: 'p95', stroke: '#f59e0b', width: 2, spanGaps: true, value: (_u, v) => (v == null ? '–' : formatDuration(v)) },
    ],
  };
  return (
    <section className="runs-charts" data-testid="runs-charts">
      <Chart options={countOptions} data={counts} testId="chart-counts" />
      <Chart options={durationOptions} data={durations} testId="chart-durations" />
      <table className="table runs-groups" data-testid="runs-groups">
        <thead>
          <tr>
            <th>workflow</th>
            <th>env</th>
            <th>started</th>
            <th>completed</th>
            <th>failed</th>
            <th>p50</th>
            <th>p95</th>
          </tr>
        </thead>
        <tbody>
          {stats.groups.map((g) => (
            <tr key={`${g.workflow}@${g.environment}`} data-testid={`group-${g.workflow}-${g.environment}`}>
              <td>{g.workflow}</td>
              <td>{g.environment}</td>
              <td>{g.started}</td>
              <td>{g.completed}</td>
              <td className={g.failed ? 'runs-failed-count' : ''}>{g.failed}</td>
              <td>{formatDuration(g.p50)}</td>
              <td>{formatDuration(g.p95)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
