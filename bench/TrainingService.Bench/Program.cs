using TrainingService.Bench;

return args.FirstOrDefault() switch
{
    "train" => await TrainBenchmark.RunAsync(args[1..]),
    "profile" => KernelProfile.Run(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: TrainingService.Bench train [--epochs N] [--rows N]");
    return 2;
}
