using TrainingService.Bench;

return args.FirstOrDefault() switch
{
    "train" => await TrainBenchmark.RunAsync(args[1..]),
    "losses" => LossBenchmark.Run(args[1..]),
    "profile" => KernelProfile.Run(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: TrainingService.Bench train [--epochs N] [--rows N]");
    Console.Error.WriteLine("       TrainingService.Bench losses [--sizes 1000000,10000000] [--classes 10] [--repeats 5]");
    return 2;
}
