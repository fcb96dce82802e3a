/**
 * Names shared by the Pulumi program, engine and provider, kept free of Pulumi imports so that
 * loading the provider (or the daemon's configuration) does not load the Pulumi SDK.
 */

/** Stack output holding `rendered.digest` (bookkeeping: not part of the status file's outputs). */
export const DIGEST_OUTPUT = 'tenantd.digest';
/** Configuration namespace of the values tenantd sets on a tenant's stack. */
export const CONFIG_NAMESPACE = 'tenantd';

/** Config key (without namespace) of one generated secret value. */
export const generatedSecretConfigName = (secretName: string, key: string): string => `generated.${secretName}.${key}`;
/** Full config key (`tenantd:generated.<secret>.<key>`), as the Automation API sets it. */
export const generatedSecretConfigKey = (secretName: string, key: string): string =>
  `${CONFIG_NAMESPACE}:${generatedSecretConfigName(secretName, key)}`;

/** The outputs a status file may show: the stack's outputs without tenantd's own bookkeeping. */
export function publicOutputs(outputs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(outputs).sort()) if (key !== DIGEST_OUTPUT) out[key] = outputs[key]!;
  return out;
}

/** `kubernetes:<group or core>/<version>:<kind>`, the type token @pulumi/kubernetes registers. */
export function typeTokenFor(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? 'core' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  return `kubernetes:${group}/${version}:${kind}`;
}
