import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'dist-electron/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // The build scripts are plain .mjs outside every tsconfig; there are more than the default cap of 8 of them.
        projectService: {
          allowDefaultProject: ['*.js', '*.mjs', 'scripts/*.mjs'],
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 20,
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The core must run on plain Node: the tray is a thin shell over it, never the other way round.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'src/ is the headless core and must run on plain Node; put Electron code in electron/.' }],
        patterns: [
          { group: ['electron/*', '**/electron/**'], message: 'src/ must not depend on the Electron shell.' },
          { group: ['console/*', '**/console/**'], message: 'src/ must not depend on the browser console; the console calls the API.' },
        ],
      }],
    },
  },
  {
    // The shell renders what src/ui computes: everything it reaches of the core goes through src/ui, where tests reach it too.
    files: ['electron/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: '(^|/)src/(?!ui/)',
          message: 'electron/ may import only src/ui; expose what the shell needs there (tested) instead.',
        }],
      }],
    },
  },
  {
    // The console runs in the browser: of the server it may know only types (erased from the bundle), never
    // code that would drag zod or Node modules into it.
    files: ['console/**/*.ts', 'console/**/*.tsx'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ group: ['**/src/**'], allowTypeImports: true, message: 'console/ may import only types from src/.' }],
        paths: [{ name: 'zod', allowTypeImports: true, message: 'console/ may import only types from zod.' }],
      }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
