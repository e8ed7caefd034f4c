using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Datasets;

/// <summary>
/// A refused upload signalled from code the importer does not call itself: <see cref="UploadStream"/>'s reads, made by
/// the CSV reader, can only throw. <see cref="CsvImporter.ImportAsync"/> catches it and returns its problem; it never
/// leaves the Datasets folder.
/// </summary>
internal sealed class UploadRefusedException(ApiProblem problem) : Exception(problem.Detail)
{
    public ApiProblem Problem { get; } = problem;
}
