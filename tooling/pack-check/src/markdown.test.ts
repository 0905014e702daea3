import { describe, expect, it } from 'vitest';
import { fencedBlocks, markedBlock, shellCommands } from './markdown.js';

const readme = [
  '# demo',
  '',
  '<!-- pack-check: setup -->',
  '',
  '```sh',
  'npm init -y   # a comment',
  '```',
  '',
  'Text between.',
  '',
  '````js',
  "console.log('```');",
  '````',
  '```',
  'plain',
  '```',
].join('\n');

describe('fencedBlocks', () => {
  it('reads each block with its info string, line and marker', () => {
    expect(fencedBlocks(readme)).toEqual([
      { info: 'sh', body: 'npm init -y   # a comment', line: 5, marker: 'setup' },
      { info: 'js', body: "console.log('```');", line: 11, marker: undefined },
      { info: '', body: 'plain', line: 14, marker: undefined },
    ]);
  });

  it('takes a marker only from the line right before the fence', () => {
    const text = '<!-- pack-check: app.js -->\n\nA paragraph.\n\n```js\nx\n```\n';
    expect(fencedBlocks(text)[0]!.marker).toBeUndefined();
    expect(() => markedBlock(text, 'app.js', 'README.md')).toThrow(
      'README.md: expected one code block after <!-- pack-check: app.js -->, found 0',
    );
  });

  it('refuses a fence that never closes', () => {
    expect(() => fencedBlocks('text\n```sh\nls\n')).toThrow(
      'line 2: a code fence that never closes',
    );
  });
});

describe('shellCommands', () => {
  it('drops comments and blank lines, keeps # inside quotes and words, joins continued lines', () => {
    expect(
      shellCommands(
        [
          '# a whole-line comment',
          'pnpm minigpt sample --prompt "ROMEO: # not a comment"   # a comment',
          '',
          "echo 'a # b' issue#12",
          'npm i a \\',
          '  b',
        ].join('\n'),
      ),
    ).toEqual([
      'pnpm minigpt sample --prompt "ROMEO: # not a comment"',
      "echo 'a # b' issue#12",
      'npm i a b',
    ]);
  });
});
