// TensorFlow.js and the trainer, loaded by the commands that run a model in it (train,
// sample) when they run. The others (prepare, export, generate, and every --help) start
// without them: importing TensorFlow.js alone takes about 0.6 s of a command's start.
export async function loadTrainer() {
  const tf = await import('@tensorflow/tfjs');
  // The CLI reports the backend it picked (and how to get a faster one) itself; production
  // mode silences tfjs's own "install tfjs-node" banner on the cpu backend.
  tf.enableProdMode();
  const [trainer, node] = await Promise.all([
    import('@minigpt/trainer'),
    import('@minigpt/trainer/node'),
  ]);
  return { trainer, node };
}
