import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Log, ReportingDescriptor, Result } from 'sarif';
import type { ValidationIssue } from '../core/tenant/types.js';

/**
 * Output where CI systems read it. `validate` and `plan` turn their reports into findings; this
 * module writes findings as GitHub Actions workflow commands (annotations on the pull request's
 * files) or as a SARIF 2.1.0 log (GitHub code scanning, GitLab, Azure DevOps, IDEs).
 */
export const OUTPUT_FORMATS = ['text', 'json', 'github', 'sarif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** GitHub Actions sets GITHUB_ACTIONS=true in every step, so annotations are on there by default. */
export const defaultFormat = (env: NodeJS.ProcessEnv): OutputFormat => (env['GITHUB_ACTIONS'] === 'true' ? 'github' : 'text');

export interface Finding {
  level: 'error' | 'warning' | 'notice';
  /** Absolute path, or a path that cannot be resolved on this machine (a file of a remote repository). */
  file: string;
  /** 1-based; 0 when unknown. */
  line: number;
  /** 1-based, in UTF-16 code units (as the YAML parser counts); 0 when unknown. */
  column: number;
  rule: { id: string; description: string };
  /** A short headline (the annotation's title). */
  title: string;
  message: string;
}

/** Where annotation and SARIF paths are relative to: the checkout (GITHUB_WORKSPACE) or the current directory. */
export const locationRoot = (env: NodeJS.ProcessEnv, cwd: string): string => path.resolve(cwd, env['GITHUB_WORKSPACE'] || cwd);

/** A finding's file relative to `root` with `/` separators, or null when it lies outside. */
function relativeTo(root: string, file: string): string | null {
  if (!path.isAbsolute(file)) return file.split(path.sep).join('/');
  const rel = path.relative(root, file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? null : rel.split(path.sep).join('/');
}

// GitHub workflow commands: `::error file=…,line=…,col=…,title=…::message`. The message may not
// hold a raw newline (it would end the command); property values may not hold `,` or `:` either.
export const escapeData = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
export const escapeProperty = (s: string): string => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

export function githubAnnotation(f: Finding, root: string): string {
  const props: string[] = [`file=${escapeProperty(relativeTo(root, f.file) ?? f.file)}`];
  if (f.line > 0) props.push(`line=${f.line}`);
  if (f.line > 0 && f.column > 0) props.push(`col=${f.column}`);
  props.push(`title=${escapeProperty(f.title)}`);
  return `::${f.level} ${props.join(',')}::${escapeData(f.message)}`;
}

/** Text printed between these appears folded in the Actions log. */
export const githubGroup = (title: string, text: string): string => `::group::${escapeData(title)}\n${text.replace(/\n?$/, '\n')}::endgroup::\n`;

const SARIF_LEVEL = { error: 'error', warning: 'warning', notice: 'note' } as const;

/**
 * A SARIF 2.1.0 log of one run. Rules are the distinct rule ids, sorted; each result names its
 * rule by id and index. Locations are relative to %SRCROOT% (the root) when inside it.
 */
export function sarifLog(findings: readonly Finding[], opts: { root: string; version: string; informationUri: string }): Log {
  const rules = new Map<string, ReportingDescriptor>();
  for (const f of findings) if (!rules.has(f.rule.id)) rules.set(f.rule.id, { id: f.rule.id, shortDescription: { text: f.rule.description } });
  const ruleIds = [...rules.keys()].sort();
  const results = findings.map((f): Result => {
    const rel = relativeTo(opts.root, f.file);
    const artifactLocation =
      rel !== null ? { uri: rel.split('/').map(encodeURIComponent).join('/'), uriBaseId: 'SRCROOT' } : { uri: path.isAbsolute(f.file) ? pathToFileURL(f.file).href : f.file };
    const region = f.line > 0 ? { region: { startLine: f.line, ...(f.column > 0 ? { startColumn: f.column } : {}) } } : {};
    return {
      ruleId: f.rule.id,
      ruleIndex: ruleIds.indexOf(f.rule.id),
      level: SARIF_LEVEL[f.level],
      message: { text: f.message },
      locations: [{ physicalLocation: { artifactLocation, ...region } }],
    };
  });
  return {
    version: '2.1.0',
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    runs: [
      {
        tool: { driver: { name: 'tenantd', version: opts.version, semanticVersion: opts.version, informationUri: opts.informationUri, rules: ruleIds.map((id) => rules.get(id) as ReportingDescriptor) } },
        originalUriBaseIds: { SRCROOT: { uri: pathToFileURL(opts.root.endsWith(path.sep) ? opts.root : `${opts.root}${path.sep}`).href } },
        columnKind: 'utf16CodeUnits',
        results,
      },
    ],
  };
}

/**
 * A problem in a tenant file as a finding. One rule per field — array indices and map keys folded,
 * `spec.services[].port` — so code scanning groups the same mistake across files; `tenant-file`
 * for a problem with the file as a whole (unreadable, not YAML, not one document).
 */
export function issueFinding(issue: ValidationIssue, file: string, level: 'error' | 'warning'): Finding {
  const field = issue.path.replace(/\[\d+\]/g, '[]').replace(/\["(?:[^"\\]|\\.)*"\]/g, '[*]');
  return {
    level,
    file,
    line: issue.line,
    column: issue.column,
    rule: field ? { id: `tenant-field/${field}`, description: `The tenant file field ${field}` } : { id: 'tenant-file', description: 'A tenant file as a whole: readable, YAML, one TenantInfrastructure document' },
    title: issue.path || 'tenant file',
    message: issue.message,
  };
}
