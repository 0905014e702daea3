// Random: determinism, resuming, ranges and distributions; the typed errors for bad seeds and
// saved states; and known answers that pin the exact sequence old checkpoints depend on.
import { describe, expect, it } from 'vitest';
import { MinigptError } from '@minigpt/errors';
import { Random, RandomError, type RandomState } from './index.js';

describe('Random', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const seqA = Array.from({ length: 8 }, () => a.nextUint32());
    const seqB = Array.from({ length: 8 }, () => b.nextUint32());
    const seqC = Array.from({ length: 8 }, () => c.nextUint32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('distinguishes seeds that differ only above 32 bits', () => {
    expect(new Random(1).nextUint32()).not.toBe(new Random(2 ** 32 + 1).nextUint32());
  });

  it('continues exactly from a saved state', () => {
    const random = new Random(7);
    for (let i = 0; i < 100; i++) random.nextUint32();
    const restored = Random.fromState(JSON.parse(JSON.stringify(random.getState())));
    const expected = Array.from({ length: 16 }, () => random.nextFloat());
    expect(Array.from({ length: 16 }, () => restored.nextFloat())).toEqual(expected);
  });

  it('keeps nextInt in range and roughly uniform', () => {
    const random = new Random(3);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) {
      const value = random.nextInt(6);
      expect(value >= 0 && value < 6).toBe(true);
      counts[value]!++;
    }
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('keeps floats in [0, 1) with mean about 1/2 and normals with mean 0, variance 1', () => {
    const random = new Random(11);
    let sum = 0;
    let normalSum = 0;
    let normalSquares = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const value = random.nextFloat();
      expect(value >= 0 && value < 1).toBe(true);
      sum += value;
      const normal = random.nextNormal();
      normalSum += normal;
      normalSquares += normal * normal;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(normalSum / n)).toBeLessThan(0.02);
    expect(Math.abs(normalSquares / n - 1)).toBeLessThan(0.03);
  });

  it('rejects bad seeds and ranges with clear errors', () => {
    expect(() => new Random(Number.NaN)).toThrow(RandomError);
    expect(() => new Random(Infinity)).toThrow(
      'Random: seed must be a finite number, got Infinity; pass an integer such as 1337',
    );
    expect(() => new Random('7' as unknown as number)).toThrow(/got the string "7"/);
    expect(() => new Random(1).nextInt(0)).toThrow(/integer in \[1, 2\^32\]/);
  });
});

describe('Random.fromState refuses malformed saved states', () => {
  const malformed: Array<[string, unknown, string]> = [
    ['not an array', { s0: 1 }, 'is an object, not an array'],
    ['null', null, 'is null, not an array'],
    ['a string', '1,2,3,4', 'is the string "1,2,3,4", not an array'],
    ['three words', [1, 2, 3], 'has 3 words, not 4'],
    ['five words', [1, 2, 3, 4, 5], 'has 5 words, not 4'],
    ['empty', [], 'has 0 words, not 4'],
    ['a fraction', [1, 2.5, 3, 4], 'word 1 is 2.5, not a uint32'],
    ['a negative word', [1, 2, -1, 4], 'word 2 is -1, not a uint32'],
    ['2^32', [1, 2, 3, 2 ** 32], 'word 3 is 4294967296, not a uint32'],
    ['a huge word', [1e300, 2, 3, 4], 'word 0 is 1e+300, not a uint32'],
    ['NaN', [Number.NaN, 2, 3, 4], 'word 0 is NaN, not a uint32'],
    ['Infinity', [1, Infinity, 3, 4], 'word 1 is Infinity, not a uint32'],
    ['a numeric string', ['1', 2, 3, 4], 'word 0 is the string "1", not a uint32'],
    [
      'a long string',
      [1, 'x'.repeat(1e6), 3, 4],
      'word 1 is the string "xxxxxxxxxxxxxxxxxxxx"…, not a uint32',
    ],
    ['null word', [1, 2, null, 4], 'word 2 is null, not a uint32'],
    ['a nested array', [[1], 2, 3, 4], 'word 0 is an array of 1, not a uint32'],
    ['a missing word', [1, 2, undefined, 4], 'word 2 is undefined, not a uint32'],
    ['a bigint', [1n, 2, 3, 4], 'word 0 is bigint, not a uint32'],
    [
      'all zero',
      [0, 0, 0, 0],
      'is all zero, which xoshiro128** never leaves (every draw would be 0)',
    ],
    ['all negative zero', [-0, -0, -0, -0], 'is all zero'],
  ];

  for (const [name, state, problem] of malformed) {
    it(`refuses ${name}`, () => {
      let caught: unknown;
      try {
        Random.fromState(state as RandomState, 'run/checkpoints/ckpt-000000100/state.json');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(RandomError);
      expect(caught).toBeInstanceOf(MinigptError);
      const error = caught as RandomError;
      expect(error.name).toBe('RandomError');
      expect(error.file).toBe('run/checkpoints/ckpt-000000100/state.json');
      expect(error.message).toContain(
        `run/checkpoints/ckpt-000000100/state.json: the saved generator state ${problem}`,
      );
      expect(error.message.length).toBeLessThan(400);
    });
  }

  it('says what a state must be and how to recover, naming the caller without a file', () => {
    expect(() => Random.fromState([1, 2, 3] as unknown as RandomState)).toThrow(
      'Random.fromState: the saved generator state has 3 words, not 4. It must be four integers ' +
        'from 0 to 4294967295 (uint32s, as getState() returns), not all zero; the checkpoint is ' +
        'damaged: resume from another one, or start the run again',
    );
  });

  it('accepts the extremes of the range', () => {
    expect(Random.fromState([0, 0, 0, 1]).getState()).toEqual([0, 0, 0, 1]);
    expect(Random.fromState([2 ** 32 - 1, 0, 0, 0]).getState()).toEqual([2 ** 32 - 1, 0, 0, 0]);
  });
});

// Known answers. Old checkpoints resume only if the sequence never changes: a failure here
// means the generator changed, which breaks every saved run. Do not "fix" the numbers.

/** The draws each known answer pins, in this order. */
function draws(random: Random) {
  const nextUint32 = Array.from({ length: 8 }, () => random.nextUint32());
  return {
    nextUint32,
    nextFloat: random.nextFloat(),
    nextInt: random.nextInt(1000),
    nextNormal: random.nextNormal(),
    stateAfter: [...random.getState()],
  };
}

describe('Random known answers: the xoshiro128** core (independent reference)', () => {
  // Produced by packages/random/test/xoshiro_reference.py (xoshiro128** written in Python
  // from its published definition, standard library only; it also checks itself against
  // the C reference implementation's outputs). State words are [s0, s1, s2, s3].
  // nextNormal is JavaScript's: Python's libm may differ in the last bit (it does for seed 1337).
  it('continues the published C reference vector from fromState', () => {
    // The C reference implementation's first xoshiro128** outputs and the state after them,
    // as published in edorfaus/xoshiro-6502 (test-rom/testdata.asm).
    const random = Random.fromState([0x964d4a0c, 0xd40ab895, 0xad7fdecb, 0x3006f0f0]);
    expect(Array.from({ length: 4 }, () => random.nextUint32())).toEqual([
      0xf1391922, 0x6fe53806, 0xa5be2840, 0xf510ee70,
    ]);
    expect(random.getState()).toEqual([0xfc65379c, 0x52006d70, 0x87487639, 0xf1908343]);
  });

  const fromState: Array<[RandomState, ReturnType<typeof draws>]> = [
    [
      [0x00000001, 0x00000002, 0x00000003, 0x00000004],
      {
        nextUint32: [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849],
        nextFloat: 0.8682488947467962,
        nextInt: 53,
        nextNormal: -1.1542236538458885,
        stateAfter: [3003937907, 2162570615, 2221656773, 3688257615],
      },
    ],
    [
      [0x00000001, 0x00000000, 0x00000000, 0x00000000],
      {
        nextUint32: [0, 5760, 5760, 2954880, 14745600, 4197258880, 1524706560, 1536491700],
        nextFloat: 0.8784374667474083,
        nextInt: 821,
        nextNormal: -1.3040205937653064,
        stateAfter: [2234174244, 471142421, 789809433, 1084733391],
      },
    ],
    [
      [0x964d4a0c, 0xd40ab895, 0xad7fdecb, 0x3006f0f0],
      {
        nextUint32: [
          4047051042, 1877293062, 2780702784, 4111527536, 161372853, 2020654102, 2834668192,
          2172304895,
        ],
        nextFloat: 0.5337107192781884,
        nextInt: 833,
        nextNormal: 0.7905478375473534,
        stateAfter: [3329038989, 3693766667, 107613115, 2083891626],
      },
    ],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      {
        nextUint32: [
          4294962679, 4294962679, 4292019319, 2943360, 1509943680, 246671744, 2681405836,
          4051244843,
        ],
        nextFloat: 0.24527632589530057,
        nextInt: 571,
        nextNormal: -1.6014549815090302,
        stateAfter: [4081473746, 2715780263, 1336749156, 1314154993],
      },
    ],
    [
      [0xdeadbeef, 0x00000000, 0x12345678, 0x80000000],
      {
        nextUint32: [
          0, 2263960055, 1162347852, 1930887705, 4175918727, 1515388599, 1276626274, 3912177480,
        ],
        nextFloat: 0.9283546985520789,
        nextInt: 628,
        nextNormal: -0.6910005096568689,
        stateAfter: [771269989, 4249902248, 2186085992, 3402982705],
      },
    ],
  ];
  for (const [state, expected] of fromState) {
    it(`fromState(${JSON.stringify(state)}) gives the reference draws`, () => {
      expect(draws(Random.fromState(state))).toEqual(expected);
    });
  }
});

describe('Random known answers: seeding (pinned, not a standard)', () => {
  // The seeding is the project's own splitmix32 (a Weyl step of 0x9e3779b9 through
  // MurmurHash3's fmix32, after folding in the bits above 32), not the other common
  // splitmix32 (0x21f0aaad / 0x735a2d97), so these numbers are pinned from the implementation
  // as it is; xoshiro_reference.py mirrors that seeding and agrees. A fractional seed counts
  // by its integer part (1.5 seeds like 1); a negative one by its two's complement.
  const seeded: Array<[number, RandomState, ReturnType<typeof draws>]> = [
    [
      0,
      [0x92ca2f0e, 0x3cd6e3f3, 0x1b147dcc, 0x4c081dbf],
      {
        nextUint32: [
          3809008728, 1133695204, 53579671, 2891528803, 139681546, 2203266335, 104831812,
          1587294886,
        ],
        nextFloat: 0.6123124436552245,
        nextInt: 208,
        nextNormal: 2.4497322692712395,
        stateAfter: [1875822241, 4235880077, 1803999725, 150555586],
      },
    ],
    [
      1,
      [0x96a0f96b, 0x12bc8390, 0x971e9964, 0x79adc7e7],
      {
        nextUint32: [
          2442144158, 3238099751, 3819917871, 2104621829, 2021136066, 4223536128, 1515984730,
          2298887649,
        ],
        nextFloat: 0.33645951642765937,
        nextInt: 214,
        nextNormal: -0.6854514923547518,
        stateAfter: [3029815864, 419604236, 1898467917, 3150674759],
      },
    ],
    [
      1337,
      [0xfee39a8f, 0x00431709, 0xb38e853c, 0x7a3e2317],
      {
        nextUint32: [
          3850783360, 2344901440, 1788140607, 2770358602, 3113703425, 1815533230, 3079387520,
          3478194484,
        ],
        nextFloat: 0.7091994272449531,
        nextInt: 349,
        nextNormal: 0.8948895236131479,
        stateAfter: [1868975955, 3456526727, 3167272027, 2984887231],
      },
    ],
    [
      2 ** 32 + 1,
      [0x3c9f3b7b, 0x5a7c6a70, 0x51a5a79e, 0xbeea276d],
      {
        nextUint32: [
          4015709042, 3165395162, 1017639106, 3720433490, 2806502315, 2797859714, 1505563327,
          1161753082,
        ],
        nextFloat: 0.4912474439999719,
        nextInt: 953,
        nextNormal: -0.038544866217065446,
        stateAfter: [1165620951, 2820114158, 1822306811, 526161091],
      },
    ],
    [
      -1,
      [0x3c9f3b7b, 0x5a7c6a70, 0x51a5a79e, 0xbeea276d],
      {
        nextUint32: [
          4015709042, 3165395162, 1017639106, 3720433490, 2806502315, 2797859714, 1505563327,
          1161753082,
        ],
        nextFloat: 0.4912474439999719,
        nextInt: 953,
        nextNormal: -0.038544866217065446,
        stateAfter: [1165620951, 2820114158, 1822306811, 526161091],
      },
    ],
    [
      -12345,
      [0xdc121bd4, 0xaad79982, 0x5955d560, 0x482536bb],
      {
        nextUint32: [
          4076727939, 799687462, 3718529579, 1469807676, 2674647785, 1822114651, 2134135630,
          4229964617,
        ],
        nextFloat: 0.6498763349478336,
        nextInt: 996,
        nextNormal: -0.19186270678938355,
        stateAfter: [2100955376, 3314838253, 1203844844, 3055265319],
      },
    ],
    [
      1.5,
      [0x96a0f96b, 0x12bc8390, 0x971e9964, 0x79adc7e7],
      {
        nextUint32: [
          2442144158, 3238099751, 3819917871, 2104621829, 2021136066, 4223536128, 1515984730,
          2298887649,
        ],
        nextFloat: 0.33645951642765937,
        nextInt: 214,
        nextNormal: -0.6854514923547518,
        stateAfter: [3029815864, 419604236, 1898467917, 3150674759],
      },
    ],
    [
      2 ** 53 - 1,
      [0xb572d886, 0xe7f3649c, 0x3054211c, 0x3786cf03],
      {
        nextUint32: [
          3830954075, 3326937903, 1621963978, 300158264, 2300948525, 1749055588, 218131737,
          2009624588,
        ],
        nextFloat: 0.9227053940974808,
        nextInt: 140,
        nextNormal: 0.3015955128138259,
        stateAfter: [1120583001, 2156215364, 1266531509, 3158490123],
      },
    ],
  ];
  for (const [seed, state, expected] of seeded) {
    it(`new Random(${seed}) starts at its pinned state and draws`, () => {
      const random = new Random(seed);
      expect(random.getState()).toEqual(state);
      expect(draws(random)).toEqual(expected);
    });
  }

  it('seeds a fraction like its integer part, and the default seed is 1337', () => {
    expect(new Random(1.5).getState()).toEqual(new Random(1).getState());
    expect(new Random().getState()).toEqual(new Random(1337).getState());
  });
});
