import { promises as fsp, type Dirent } from 'node:fs';
import path from 'node:path';
import { classifyTenantEntries, type EntryKind, type SkippedEntry } from '../core/desired/layout.js';
import { printable } from '../core/printable.js';
import { formatIssue, formatWarning, type ValidationIssue } from '../core/tenant/types.js';
import { parseTenantFile } from '../core/tenant/validate.js';
import type { CommandSpec } from './args.js';
import { githubAnnotation, issueFinding, OUTPUT_FORMATS, sarifLog, type Finding, type OutputFormat } from './ci-output.js';

export const VALIDATE_COMMAND: CommandSpec = {
  name: 'validate',
  synopsis: '[--format text|json|github|sarif] [paths…]',
  summary: 'Check tenant files: files, or directories of *.yaml (a repository root means its tenants/; default tenants). Every problem in every file is reported at once, with file:line:column.',
  flags: { format: { type: 'string', values: OUTPUT_FORMATS, help: 'output format (default github when GITHUB_ACTIONS=true, else text)' } },
  positionals: { min: 0, max: Infinity, name: 'path' },
  notes: 'Formats: text (file:line:col: field: message), json, github (::error workflow commands: annotations on the pull request), sarif (SARIF 2.1.0, for code scanning).\nExit codes: 0 all valid, 1 any file invalid, 2 a usage error.',
};

/** What `tenantd validate` found: errors make a file invalid; warnings (deprecations) do not. */
export interface ValidationReport {
  files: number;
  issues: ValidationIssue[];
  warnings: ValidationIssue[];
  /** Entries of the directories given that are not tenant files, and why (never silently left out). */
  skipped: SkippedEntry[];
}

/**
 * `tenantd validate <paths…>`: files, or directories searched for `*.yaml`/`*.yml` (a tenants
 * repository's root means its `tenants/`). Paths in messages are as the user gave them, relative
 * to the current directory, so a pull-request check can link `file:line:column`.
 */
export async function validatePaths(paths: string[], cwd: string): Promise<ValidationReport> {
  const files: string[] = [];
  const issues: ValidationIssue[] = [];
  const warnings: ValidationIssue[] = [];
  const skipped: SkippedEntry[] = [];
  /** Tenant-named entries that are not read (a symlink, a duplicate): counted as invalid files. */
  let unreadable = 0;
  const shownPath = (abs: string): string => path.relative(cwd, abs) || abs;
  for (const p of paths.length ? paths : ['tenants']) {
    const abs = path.resolve(cwd, p);
    const stat = await fsp.stat(abs).catch(() => null);
    if (!stat) {
      files.push(abs);
      continue;
    }
    if (stat.isDirectory()) {
      const tenantsDir = path.join(abs, 'tenants');
      const root = (await fsp.stat(tenantsDir).catch(() => null))?.isDirectory() ? tenantsDir : abs;
      // The same rules as the daemon's: what is not a tenant file is reported, never silently left out.
      const entries = (await fsp.readdir(root, { withFileTypes: true })).map((d) => ({ name: d.name, kind: direntKind(d) }));
      const layout = classifyTenantEntries(shownPath(root), entries);
      for (const source of layout.sources) {
        if (source.file) files.push(path.join(root, source.file.name));
        else if (source.problem) {
          unreadable += source.problem.paths.length;
          for (const file of source.problem.paths) issues.push({ file, line: 0, column: 0, path: '', message: source.problem.message });
        }
      }
      skipped.push(...layout.skipped);
    } else {
      files.push(abs);
    }
  }
  for (const abs of files) {
    const shown = shownPath(abs);
    const text = await fsp.readFile(abs, 'utf8').catch((err: unknown) => err as NodeJS.ErrnoException);
    if (typeof text !== 'string') {
      issues.push({ file: shown, line: 0, column: 0, path: '', message: `cannot read file (${text.code ?? text.message})` });
      continue;
    }
    const result = parseTenantFile(shown, text);
    if (!result.ok) issues.push(...result.issues);
    else warnings.push(...result.warnings);
  }
  return { files: files.length + unreadable, issues, warnings, skipped };
}

function direntKind(d: Dirent): EntryKind {
  if (d.isSymbolicLink()) return 'symlink';
  if (d.isDirectory()) return 'directory';
  return d.isFile() ? 'file' : 'other';
}

export interface OutputContext {
  /** Issue paths are relative to this directory. */
  cwd: string;
  /** Annotation and SARIF paths are relative to this one (the checkout). */
  root: string;
  version: string;
}

/** The one place validation results are formatted, in every output format. */
export function formatValidation(report: ValidationReport, format: OutputFormat, ctx: OutputContext): string {
  const bad = new Set(report.issues.map((i) => i.file)).size;
  const summary =
    (report.issues.length === 0 ? `${report.files} tenant file(s) valid` : `${report.issues.length} error(s) in ${bad} of ${report.files} tenant file(s)`) +
    (report.warnings.length ? `, ${report.warnings.length} warning(s)` : '') +
    (report.skipped.length ? `; ${report.skipped.length} other file(s) skipped` : '');
  const findings = (): Finding[] => [
    ...report.issues.map((i) => issueFinding(i, path.resolve(ctx.cwd, i.file), 'error')),
    ...report.warnings.map((i) => issueFinding(i, path.resolve(ctx.cwd, i.file), 'warning')),
  ];
  switch (format) {
    case 'json':
      return `${JSON.stringify({ valid: report.issues.length === 0, files: report.files, invalidFiles: bad, errors: report.issues, warnings: report.warnings, skipped: report.skipped }, null, 2)}\n`;
    case 'sarif':
      return `${JSON.stringify(sarifLog(findings(), { root: ctx.root, version: ctx.version, informationUri: 'https://tenantd.io' }), null, 2)}\n`;
    case 'github':
      return `${[...findings().map((f) => githubAnnotation(f, ctx.root)), summary].join('\n')}\n`;
    case 'text':
      return `${[...report.issues.map(formatIssue), ...report.warnings.map(formatWarning), ...report.skipped.map((x) => `${printable(x.path)}: skipped: ${x.reason}`), summary].join('\n')}\n`;
  }
}
