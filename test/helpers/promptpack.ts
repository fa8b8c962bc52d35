/** PromptPacks for tests: one that the PromptPack schema v1.4.0 accepts, and ways to break it. */

/** A minimal valid pack (the schema's required fields, one prompt). */
export function validPack(id = 'support'): Record<string, unknown> {
  return {
    $schema: 'https://promptpack.org/schema/latest/promptpack.schema.json',
    id,
    name: 'Support',
    version: '1.0.0',
    template_engine: { version: 'v1', syntax: '{{variable}}' },
    prompts: {
      greeter: { id: 'greeter', name: 'Greeter', version: '1.0.0', system_template: 'Greet {{name}} politely.' },
    },
  };
}

export const packJson = (pack: Record<string, unknown>): string => `${JSON.stringify(pack, null, 2)}\n`;
