import { cpus, platform, release, totalmem } from 'node:os';
import type { Measurement } from './load.js';

/** The one table the benchmark prints (Markdown, padded so that it also reads in a terminal). */

export type Verdict = 'PASS' | 'FAIL' | 'INVALID' | 'info' | '';

/** Several runs of one scenario on one server, summed up: medians, and the largest memory seen. */
export interface Summary {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerRequest: number | null;
  rssBytes: number | null;
  unexpected: number;
  unexpectedSummary: string;
}

export interface Row {
  scenario: string;
  summary?: Summary;
  /** The number the goal is about: a ratio, bytes, seconds. */
  measured: string;
  goal: string;
  verdict: Verdict;
}

export function median(values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function summarise(runs: Measurement[]): Summary {
  const cpu = runs.map((run) => run.cpuMsPerRequest).filter((value): value is number => value !== null);
  const rss = runs.map((run) => run.rssBytes).filter((value): value is number => value !== null);
  return {
    rps: median(runs.map((run) => run.rps)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    cpuMsPerRequest: cpu.length > 0 ? median(cpu) : null,
    rssBytes: rss.length > 0 ? Math.max(...rss) : null,
    unexpected: runs.reduce((sum, run) => sum + run.unexpected, 0),
    unexpectedSummary: runs
      .map((run) => run.unexpectedSummary)
      .filter(Boolean)
      .join('; '),
  };
}

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatMs(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return 'n/a';
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) < 10_000) return `${numberFormat.format(bytes)} B`;
  if (Math.abs(bytes) < 10_000_000) return `${numberFormat.format(bytes / 1024)} KiB`;
  return `${numberFormat.format(bytes / 1024 / 1024)} MiB`;
}

export const formatRatio = (ratio: number) => (Number.isNaN(ratio) ? 'n/a' : `${ratio.toFixed(2)}×`);

const HEADER = ['scenario', 'req/s', 'p50', 'p99', 'CPU/req', 'RSS', 'measured', 'goal', 'result'];

function cellsOf(row: Row): string[] {
  const summary = row.summary;
  return [
    row.scenario,
    summary ? numberFormat.format(summary.rps) : '—',
    summary ? formatMs(summary.p50Ms) : '—',
    summary ? formatMs(summary.p99Ms) : '—',
    summary ? formatMs(summary.cpuMsPerRequest) : '—',
    summary?.rssBytes != null ? formatBytes(summary.rssBytes) : '—',
    row.measured,
    row.goal,
    row.verdict,
  ];
}

export function formatTable(rows: Row[]): string {
  const lines = [HEADER, ...rows.map(cellsOf)];
  const widths = HEADER.map((_, column) => Math.max(...lines.map((cells) => [...cells[column]!].length)));
  const format = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell + ' '.repeat(widths[column]! - [...cell].length)).join(' | ')} |`;
  const rule = `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`;
  return [format(HEADER), rule, ...lines.slice(1).map(format)].join('\n');
}

export function describeMachine(): string {
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const memory = `${Math.round(totalmem() / 1024 ** 3)} GiB`;
  // cpus(), not availableParallelism(): this process is pinned to one core by now.
  return `${model}, ${cpus().length} cores, ${memory} RAM; ${platform()} ${release()}; Node ${process.version}`;
}
