namespace TrainingService.Server.Datasets;

/// <summary>A column in API responses: the stored schema, with the value list cut to the most frequent.</summary>
public sealed record ColumnResponse
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public required bool Usable { get; init; }
    public required long Missing { get; init; }
    public required int Distinct { get; init; }
    public required bool DistinctCapped { get; init; }
    public NumericStats? Stats { get; init; }
    public bool? Integral { get; init; }
    public IReadOnlyList<CategoryCount>? TopValues { get; init; }
    public string? Note { get; init; }
}

/// <summary>A dataset.</summary>
public sealed record DatasetResponse
{
    public required Guid Id { get; init; }
    public required string Name { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required long RowCount { get; init; }
    public required long SizeBytes { get; init; }
    public required string Sha256 { get; init; }
    public required string Delimiter { get; init; }
    public required IReadOnlyList<ColumnResponse> Columns { get; init; }

    public static DatasetResponse From(DatasetInfo d, int topValues) => new()
    {
        Id = d.Id,
        Name = d.Name,
        CreatedAt = d.CreatedAt,
        RowCount = d.RowCount,
        SizeBytes = d.SizeBytes,
        Sha256 = d.Sha256,
        Delimiter = d.Delimiter,
        Columns = d.Columns.Select(c => new ColumnResponse
        {
            Name = c.Name,
            Type = c.Type,
            Usable = c.Usable,
            Missing = c.Missing,
            Distinct = c.Distinct,
            DistinctCapped = c.DistinctCapped,
            Stats = c.Stats,
            Integral = c.Integral,
            TopValues = c.Values?.Take(topValues).ToList(),
            Note = c.Note,
        }).ToList(),
    };
}

/// <summary>A page of datasets, newest first.</summary>
public sealed record DatasetPage(IReadOnlyList<DatasetResponse> Items, int Offset, int Limit, long Total);

/// <summary>The first rows of a dataset, cells as written (missing cells included as written).</summary>
public sealed record DatasetPreview(Guid Id, IReadOnlyList<string> Columns, IReadOnlyList<string?[]> Rows);
