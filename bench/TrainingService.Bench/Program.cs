using TrainingService.Bench;

// Benchmarks are commands, not tests: each prints its numbers beside a baseline measured in the same run.
// scripts/bench.sh <command> builds in Release, starts what the command needs, and runs it.
return args.FirstOrDefault() switch
{
    "train" => await TrainBenchmark.RunAsync(args[1..]),
    "losses" => LossBenchmark.Run(args[1..]),
    "upload" => await UploadBenchmark.RunAsync(args[1..]),
    "service" => await ServiceBenchmark.RunAsync(args[1..]),
    "evaluate" => await EvaluateBenchmark.RunAsync(args[1..]),
    "profile" => KernelProfile.Run(),
    "fuzz" => await FuzzBenchmark.RunAsync(args[1..]),
    "faults" => await FaultBenchmark.RunAsync(args[1..]),
    "fairness" => await FairnessBenchmark.RunAsync(args[1..]),
    "scaleout" => await ScaleOutBenchmark.RunAsync(args[1..]),
    "sweep" => await SweepBenchmark.RunAsync(args[1..]),
    "dashboard" => await DashboardBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: TrainingService.Bench <command>");
    Console.Error.WriteLine("  train   [--epochs 3] [--rows 100000] [--cpu-groups N]  reference MLP and an iris-sized job vs PyTorch eager and TensorFlow.js (wasm)");
    Console.Error.WriteLine("  losses  [--sizes 1000000,10000000] [--classes 10] [--repeats 5]  loss kernels vs parallel SIMD C# and memcpy");
    Console.Error.WriteLine("  upload  [--size-mb 500]  CSV upload end to end vs Sep parsing alone, server peak memory");
    Console.Error.WriteLine("  service [--duration 30] [--connections 64] [--polling-only]  pickup, epoch time, SSE latency, history polling with wrk (keys on and off)");
    Console.Error.WriteLine("  evaluate [--elements 4000000] [--idle 10]  the largest loss evaluation, once and twice at once: server RSS vs payload");
    Console.Error.WriteLine("  profile  one training step of the reference MLP by phase and kernel, GFLOP/s vs a scalar C# GEMM");
    Console.Error.WriteLine("  fuzz    [--requests 10000] [--seed 1] [--concurrency 16]  hostile requests on every route: 5xx, peak RSS, rows stored");
    Console.Error.WriteLine("  sweep   [--trials 27] [--epochs 27] [--seeds 5] [--search-trials 50]  ASHA vs no early termination; TPE vs random, trials to within 2% of the best");
    Console.Error.WriteLine("  faults  [--rows 2000]  kill -9 of a job's worker (time to resume), PostgreSQL restart mid-job (the stall)");
    Console.Error.WriteLine("  fairness [--jobs 100]  tenant B's one job behind tenant A's backlog on one worker: fair scheduling vs FIFO");
    Console.Error.WriteLine("  scaleout [--jobs 200] [--epochs 3] [--workers 1,2,4]  one API and N worker processes; then one worker killed");
    Console.Error.WriteLine("  dashboard [--repeats 5] [--stream-seconds 15]  the page in headless chromium: first curve (10,000 epochs), 20-job comparison, long tasks while 5 jobs stream; vs an empty page");
    return 2;
}
