import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { formatIssue, formatWarning, type ValidationIssue } from '../core/tenant/types.js';
import { parseTenantFile } from '../core/tenant/validate.js';

/**
 * `tenantd validate <paths…>`: files, or directories searched for `*.yaml`/`*.yml` (a tenants
 * repository's root means its `tenants/`). Paths in messages are as the user gave them, relative
 * to the current directory, so a pull-request check can link `file:line:column`.
 */
export async function validatePaths(paths: string[], cwd: string): Promise<{ files: number; issues: ValidationIssue[]; warnings: ValidationIssue[] }> {
  const files: string[] = [];
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
      for (const name of (await fsp.readdir(root)).sort()) {
        if (/\.ya?ml$/.test(name)) files.push(path.join(root, name));
      }
    } else {
      files.push(abs);
    }
  }
  const issues: ValidationIssue[] = [];
  const warnings: ValidationIssue[] = [];
  for (const abs of files) {
    const shown = path.relative(cwd, abs) || abs;
    const text = await fsp.readFile(abs, 'utf8').catch((err: unknown) => err as NodeJS.ErrnoException);
    if (typeof text !== 'string') {
      issues.push({ file: shown, line: 0, column: 0, path: '', message: `cannot read file (${text.code ?? text.message})` });
      continue;
    }
    const result = parseTenantFile(shown, text);
    if (!result.ok) issues.push(...result.issues);
    else warnings.push(...result.warnings);
  }
  return { files: files.length, issues, warnings };
}

/** Errors, then warnings (`file:line:col: warning: path: message`), then a summary line. */
export function formatValidation(result: { files: number; issues: ValidationIssue[]; warnings?: ValidationIssue[] }): string {
  const lines = result.issues.map(formatIssue);
  const warnings = result.warnings ?? [];
  lines.push(...warnings.map(formatWarning));
  const bad = new Set(result.issues.map((i) => i.file)).size;
  const warned = warnings.length ? `, ${warnings.length} warning(s)` : '';
  lines.push(
    result.issues.length === 0
      ? `${result.files} tenant file(s) valid${warned}`
      : `${result.issues.length} error(s) in ${bad} of ${result.files} tenant file(s)${warned}`,
  );
  return `${lines.join('\n')}\n`;
}
