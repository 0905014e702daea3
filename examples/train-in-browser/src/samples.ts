// The bundled samples: a short story written for this repo (MIT, like the rest of it), and a
// counting song generated here, whose regular verses a nano model learns within a minute.
import lighthouse from './samples/lighthouse.txt?raw';

export interface Sample {
  readonly id: string;
  readonly label: string;
  readonly text: string;
}

const NUMBERS = [
  'no',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
  'twenty',
];

const capitalize = (word: string) => word[0]!.toUpperCase() + word.slice(1);

/** "Twenty green bottles hanging on the wall …" down to none, the verses of the traditional song. */
export function countingSong(from = 20): string {
  const bottles = (n: number) => `${NUMBERS[n]} green bottle${n === 1 ? '' : 's'}`;
  const verses: string[] = [];
  for (let n = from; n >= 1; n--) {
    verses.push(
      [
        `${capitalize(bottles(n))} hanging on the wall,`,
        `${capitalize(bottles(n))} hanging on the wall,`,
        `And if one green bottle should accidentally fall,`,
        `There'll be ${bottles(n - 1)} hanging on the wall.`,
      ].join('\n'),
    );
  }
  return `${verses.join('\n\n')}\n`;
}

export const SAMPLES: readonly Sample[] = [
  {
    id: 'lighthouse',
    label: 'The keeper of the north light (a short story, 3.7 KB)',
    text: lighthouse,
  },
  {
    id: 'bottles',
    label: 'Green bottles (a counting song, generated, 3.7 KB)',
    text: countingSong(),
  },
];
