// Lint rules for every package: typescript-eslint's recommended set, plus the monorepo rule
// that a package imports another only through its public entry, never its src/ or dist/.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Scripts written as plain ES modules (benches, the fuzzer) run on Node.
  { files: ['**/*.mjs'], languageOptions: { globals: globals.node } },
  {
    files: ['**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@minigpt/*/src/*', '@minigpt/*/dist/*', 'minigpt/src/*', 'minigpt/dist/*'],
              message:
                "Import another package through its public entry ('@minigpt/name'), not its internals.",
            },
            {
              group: ['../../*/src/*', '../../../packages/*'],
              message:
                'Do not reach into another package by relative path; import its public entry.',
            },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
);
