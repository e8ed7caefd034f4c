using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Server.Datasets;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Datasets as people have them: RFC 4180 quoting, delimiters, missing values, types, big files, bad input.</summary>
[Collection(ServiceTests.Name)]
public sealed class DatasetTests(ServiceFixture service)
{
    private readonly HttpClient _client = service.Client;

    private static JsonNode Column(JsonNode dataset, string name) =>
        dataset["columns"]!.AsArray().Single(c => (string?)c!["name"] == name)!;

    private async Task<long> CountAsync(string table) => await service.Database.ScalarAsync<long>($"SELECT count(*) FROM {table}");

    [Fact]
    public async Task Quoted_commas_escaped_quotes_and_embedded_newlines_are_read_as_written()
    {
        string csv = "id,comment,score\r\n1,\"hello, world\",3\r\n2,\"she said \"\"hi\"\"\",4\r\n3,\"two\nlines\",5\r\n";

        var dataset = await _client.UploadAsync(csv);
        var preview = await _client.GetJsonAsync($"/api/datasets/{dataset.Id()}/preview");

        Assert.Equal(3, (int)dataset["rowCount"]!);
        var rows = preview["rows"]!.AsArray();
        Assert.Equal("hello, world", (string?)rows[0]![1]);
        Assert.Equal("she said \"hi\"", (string?)rows[1]![1]);
        Assert.Equal("two\nlines", (string?)rows[2]![1]);
        Assert.Equal("numeric", (string?)Column(dataset, "score")["type"]);
    }

    [Fact]
    public async Task A_semicolon_delimited_file_with_a_bom_is_detected()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("a;b;c\n1;2;x\n4;5;y\n")).ToArray();

        var response = await _client.PostBytesAsync(bytes, query: $"?name=semi-{Guid.NewGuid():N}");
        var dataset = await Api.ReadAsync(response, HttpStatusCode.Created);

        Assert.Equal(";", (string?)dataset["delimiter"]);
        Assert.Equal(["a", "b", "c"], dataset["columns"]!.AsArray().Select(c => (string)c!["name"]!));
    }

    [Fact]
    public async Task A_delimiter_can_be_given_explicitly()
    {
        var response = await _client.PostCsvAsync("a\tb\n1\t2\n", "?delimiter=tab");
        var dataset = await Api.ReadAsync(response, HttpStatusCode.Created, HttpStatusCode.OK);

        Assert.Equal("\t", (string?)dataset["delimiter"]);
        await (await _client.PostCsvAsync("a,b\n1,2\n", "?delimiter=x")).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_delimiter", "delimiter");
    }

    [Fact]
    public async Task Reuploading_identical_bytes_returns_the_existing_dataset()
    {
        string csv = TestData.Linear(30, seed: 77);

        var first = await Api.ReadAsync(await _client.PostCsvAsync(csv), HttpStatusCode.Created);
        long datasets = await CountAsync("datasets");
        var second = await _client.PostCsvAsync(csv);
        var again = await Api.ReadAsync(second, HttpStatusCode.OK);

        Assert.Equal(first.Id(), again.Id());
        Assert.Equal(datasets, await CountAsync("datasets"));
        Assert.Equal((string?)first["sha256"], (string?)again["sha256"]);
    }

    [Fact]
    public async Task The_same_bytes_read_with_another_delimiter_are_another_dataset()
    {
        string csv = "a;b,c\n1;2,3\n4;5,6\n";

        var byComma = await Api.ReadAsync(await _client.PostCsvAsync(csv, "?delimiter=,"), HttpStatusCode.Created);
        var bySemicolon = await Api.ReadAsync(await _client.PostCsvAsync(csv, "?delimiter=;"), HttpStatusCode.Created);
        var byCommaAgain = await Api.ReadAsync(await _client.PostCsvAsync(csv, "?delimiter=,"), HttpStatusCode.OK);

        Assert.NotEqual(byComma.Id(), bySemicolon.Id());
        Assert.Equal(byComma.Id(), byCommaAgain.Id());
        Assert.Equal(["a;b", "c"], byComma["columns"]!.AsArray().Select(c => (string)c!["name"]!));
        Assert.Equal(["a", "b,c"], bySemicolon["columns"]!.AsArray().Select(c => (string)c!["name"]!));
    }

    [Fact]
    public async Task A_multipart_upload_takes_the_file_part_and_its_name()
    {
        using var form = new MultipartFormDataContent();
        var file = new StringContent("p,q\n1,2\n3,4\n", Encoding.UTF8);
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(new StringContent("ignored"), "note");
        form.Add(file, "file", $"measurements-{Guid.NewGuid():N}.csv");

        var dataset = await Api.ReadAsync(await _client.PostAsync("/api/datasets", form), HttpStatusCode.Created);

        Assert.StartsWith("measurements-", (string?)dataset["name"]);
        Assert.Equal(2, (int)dataset["rowCount"]!);
    }

    [Theory]
    [InlineData("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\na,b\n1,2\n")] // no closing boundary
    [InlineData("--b\r\nContent-Disposition: form-data; name=\"file\"")] // cut off in the part headers
    [InlineData("no boundary line at all")]
    public async Task A_malformed_multipart_body_is_refused_and_stores_nothing(string body)
    {
        long datasets = await CountAsync("datasets");

        var response = await _client.PostBytesAsync(Encoding.UTF8.GetBytes(body), "multipart/form-data; boundary=b");

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_multipart");
        Assert.Equal(datasets, await CountAsync("datasets"));
    }

    [Fact]
    public async Task A_record_past_the_parsers_length_limit_is_refused_naming_its_line()
    {
        // An unclosed quote on line 3 swallows the rest of a file larger than Sep's 16 M-character record limit. The
        // test host caps uploads below that, so this drives an importer configured with a larger cap.
        var settings = new Configuration.DatasetOptions { MaxUploadBytes = 64_000_000 };
        var importer = new CsvImporter(service.Factory.Services.GetRequiredService<Npgsql.NpgsqlDataSource>(),
            Microsoft.Extensions.Options.Options.Create(settings), Microsoft.Extensions.Logging.Abstractions.NullLogger<CsvImporter>.Instance,
            service.Factory.Services.GetRequiredService<UploadSpool>());
        var file = new MemoryStream();
        file.Write("a,b\n1,2\n3,\"open\n"u8);
        var filler = Encoding.ASCII.GetBytes(new string('x', 1 << 20));
        for (int i = 0; i < 17; i++)
        {
            file.Write(filler);
        }
        file.Position = 0;
        long datasets = await CountAsync("datasets");

        var problem = (await importer.ImportAsync("default", file, "too-long", null, CancellationToken.None)).Problem;

        Assert.NotNull(problem);
        Assert.Equal(400, problem.Status);
        Assert.Equal("dataset.row_too_long", problem.Code);
        Assert.Equal(3, (int)problem.Extensions!["line"]!);
        Assert.Equal(datasets, await CountAsync("datasets"));
    }

    [Fact]
    public async Task A_multipart_body_without_a_file_part_is_refused()
    {
        using var form = new MultipartFormDataContent { { new StringContent("x"), "note" } };

        await (await _client.PostAsync("/api/datasets", form)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.missing_file", "file");
    }

    [Fact]
    public async Task A_multipart_boundary_longer_than_rfc_2046_allows_is_refused_not_a_500()
    {
        // MultipartReader throws on a boundary near its 4 KiB buffer; a header this long still fits Kestrel's limits.
        var content = new StringContent("--x\r\n", Encoding.UTF8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={new string('a', 5000)}");
        long datasets = await CountAsync("datasets");

        await (await _client.PostAsync("/api/datasets", content)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_multipart");
        Assert.Equal(datasets, await CountAsync("datasets"));
    }

    [Fact]
    public async Task A_multipart_content_type_without_a_boundary_is_refused()
    {
        var content = new StringContent("a,b\n1,2\n", Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("multipart/form-data");

        await (await _client.PostAsync("/api/datasets", content)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_multipart");
    }

    [Fact]
    public async Task A_json_body_is_an_unsupported_media_type()
    {
        var response = await _client.PostAsJsonAsync("/api/datasets", new { a = 1 });

        await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "dataset.unsupported_media_type");
    }

    [Fact]
    public async Task Types_missing_values_and_statistics_are_inferred_per_column()
    {
        string csv = "num,flag,colour,when,note,mostly missing\n" +
            "1.5,true,red,2024-01-02,alpha,\n" +
            "NA,FALSE,blue,2024-02-03,beta,NA\n" +
            "3.5,true,red,2024-03-04T10:00:00,gamma,null\n" +
            ",false,,2024-04-05,delta,7\n" +
            "5.5,N/A,green,2024-05-06,epsilon,nan\n";
        var longText = string.Join("\n", Enumerable.Range(0, 30).Select(i => $"{i},true,red,2024-01-01,word{i},1"));

        var dataset = await _client.UploadAsync(csv + longText + "\n");

        var num = Column(dataset, "num");
        Assert.Equal("numeric", (string?)num["type"]);
        Assert.Equal(2, (long)num["missing"]!);
        Assert.Equal(0.0, (double)num["stats"]!["min"]!);
        Assert.Equal(29.0, (double)num["stats"]!["max"]!);
        Assert.Equal("boolean", (string?)Column(dataset, "flag")["type"]);
        Assert.Equal(1, (long)Column(dataset, "flag")["missing"]!);
        var colour = Column(dataset, "colour");
        Assert.Equal("categorical", (string?)colour["type"]);
        Assert.Equal(3, (int)colour["distinct"]!);
        Assert.Equal("red", (string?)colour["topValues"]![0]!["value"]);
        Assert.Equal(32, (long)colour["topValues"]![0]!["count"]!);
        Assert.Equal("datetime", (string?)Column(dataset, "when")["type"]);
        Assert.False((bool)Column(dataset, "when")["usable"]!);
        Assert.Equal("text", (string?)Column(dataset, "note")["type"]);
        Assert.False((bool)Column(dataset, "note")["usable"]!);
        Assert.Equal(4, (long)Column(dataset, "mostly missing")["missing"]!);
    }

    [Fact]
    public async Task Column_names_are_kept_exactly_and_accepted_as_written_in_a_job()
    {
        var dataset = await _client.UploadAsync(TestData.Blobs(90, seed: 5));
        Assert.Equal(["width (cm)", "höhe", "species"], dataset["columns"]!.AsArray().Select(c => (string)c!["name"]!));

        var job = await _client.SubmitAsync(new
        {
            datasetId = dataset.Id(), target = "species", features = new[] { "width (cm)", "höhe" },
            loss = "cross_entropy", optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 3, batchSize = 16,
        });
        var done = await _client.WaitForEndAsync(job.Id());

        Assert.Equal("succeeded", (string?)done["status"]);
        Assert.Equal(["setosa", "versicolor", "virginica"], done["data"]!["labels"]!.AsArray().Select(l => (string)l!));
    }

    [Fact]
    public async Task A_categorical_target_given_as_words_trains_and_predicts_words()
    {
        var dataset = await _client.UploadAsync(TestData.Blobs(300, seed: 6));
        var job = await _client.SubmitAsync(new
        {
            datasetId = dataset.Id(), target = "species", loss = "cross_entropy",
            optimizer = new { name = "adam", learningRate = 0.05 }, epochs = 15, batchSize = 16, validation = new { fraction = 0.2 },
        });
        var done = await _client.WaitForEndAsync(job.Id());
        Assert.Equal("succeeded", (string?)done["status"]);

        var prediction = await Api.ReadAsync(await _client.PostAsJsonAsync($"/api/jobs/{job.Id()}/predict",
            new { rows = new[] { new Dictionary<string, object?> { ["width (cm)"] = 3.1, ["höhe"] = -2.2 } } }), HttpStatusCode.OK);

        Assert.Equal("virginica", (string?)prediction["predictions"]![0]!["label"]);
        Assert.Equal(3, prediction["predictions"]![0]!["probabilities"]!.AsObject().Count);
    }

    [Fact]
    public async Task Missing_cells_are_dropped_or_imputed_as_the_spec_says_and_the_count_is_reported()
    {
        var csv = new StringBuilder("a,b,colour,y\n");
        var random = new Random(8);
        for (int i = 0; i < 200; i++)
        {
            string a = i % 10 == 0 ? "NA" : (random.NextDouble() * 2 - 1).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            string b = i % 25 == 0 ? "" : (random.NextDouble() * 2 - 1).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            string colour = i % 40 == 0 ? "" : i % 2 == 0 ? "red" : "blue";
            string y = i % 50 == 0 ? "NA" : (i % 3).ToString(System.Globalization.CultureInfo.InvariantCulture);
            csv.Append($"{a},{b},{colour},{y}\n");
        }
        var dataset = await _client.UploadAsync(csv.ToString());
        object Spec(string missing) => new
        {
            datasetId = dataset.Id(), target = "y", loss = "mse", missing, optimizer = new { name = "sgd", learningRate = 0.01 }, epochs = 1,
        };

        var dropped = await _client.WaitForEndAsync((await _client.SubmitAsync(Spec("drop_rows"))).Id());
        var imputed = await _client.WaitForEndAsync((await _client.SubmitAsync(Spec("impute"))).Id());

        // Targets missing in rows 0, 50, 100, 150; features missing in rows i%10==0 (a), i%25==0 (b), i%40==0 (colour).
        int missingTarget = 4;
        int missingFeature = Enumerable.Range(0, 200).Count(i => i % 50 != 0 && (i % 10 == 0 || i % 25 == 0 || i % 40 == 0));
        Assert.Equal(missingTarget, (int)dropped["data"]!["rowsDroppedMissingTarget"]!);
        Assert.Equal(missingFeature, (int)dropped["data"]!["rowsDroppedMissingFeatures"]!);
        Assert.Equal(200 - missingTarget - missingFeature, (int)dropped["data"]!["trainRows"]!);
        Assert.Equal(missingTarget, (int)imputed["data"]!["rowsDroppedMissingTarget"]!);
        Assert.Equal(0, (int)imputed["data"]!["rowsDroppedMissingFeatures"]!);
        Assert.Equal(200 - missingTarget, (int)imputed["data"]!["trainRows"]!);
        Assert.Equal(["a", "b", "colour=blue", "colour=red"], imputed["data"]!["inputs"]!.AsArray().Select(x => (string)x!));
    }

    [Fact]
    public async Task A_file_larger_than_every_buffer_is_stored_in_chunks_and_read_back_whole()
    {
        // 50,000 rows: 50 chunks of 1,000 rows (Datasets:ChunkRows in the tests), ~2.5 MB through every stream buffer.
        var dataset = await _client.UploadAsync(TestData.Linear(50_000, seed: 9));
        long chunks = await service.Database.ScalarAsync<long>($"SELECT count(*) FROM dataset_chunks WHERE dataset_id = '{dataset.Id()}'");

        Assert.Equal(50_000, (int)dataset["rowCount"]!);
        Assert.Equal(150, chunks);
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 1, batchSize: 256));
        var done = await _client.WaitForEndAsync(job.Id());
        Assert.Equal(50_000, (int)done["data"]!["trainRows"]!);
        Assert.True((double)done["summary"]!["lastTrainLoss"]! < 1.0);
    }

    [Fact]
    public async Task Listing_is_paged_newest_first_and_preview_rows_are_bounded()
    {
        var older = await _client.UploadAsync(TestData.Linear(5, seed: 10));
        var newer = await _client.UploadAsync(TestData.Linear(5, seed: 11));

        var page = await _client.GetJsonAsync("/api/datasets?limit=2");
        var preview = await _client.GetJsonAsync($"/api/datasets/{newer.Id()}/preview?rows=2");

        Assert.Equal([newer.Id(), older.Id()], page["items"]!.AsArray().Select(d => d!.Id()));
        Assert.True((long)page["total"]! >= 2);
        Assert.Equal(2, preview["rows"]!.AsArray().Count);
        await (await _client.GetAsync("/api/datasets?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_page", "limit");
        await (await _client.GetAsync($"/api/datasets/{newer.Id()}/preview?rows=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_preview_rows", "rows");
    }

    [Fact]
    public async Task A_dataset_in_use_by_a_running_job_cannot_be_deleted_until_the_job_ends()
    {
        var dataset = await _client.UploadAsync(TestData.Linear(20_000, seed: 12));
        var job = await _client.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 200, batchSize: 4));
        await _client.WaitForAsync(job.Id(), TimeSpan.FromSeconds(30), "running");

        await (await _client.DeleteAsync($"/api/datasets/{dataset.Id()}")).AssertProblemAsync(HttpStatusCode.Conflict, "dataset.in_use");

        await _client.PostAsync($"/api/jobs/{job.Id()}/cancel", null);
        await _client.WaitForEndAsync(job.Id());
        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/api/datasets/{dataset.Id()}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/api/datasets/{dataset.Id()}")).StatusCode);
        Assert.Equal(0L, await service.Database.ScalarAsync<long>($"SELECT count(*) FROM dataset_chunks WHERE dataset_id = '{dataset.Id()}'"));
        var finished = await _client.GetJsonAsync($"/api/jobs/{job.Id()}");
        Assert.Null(finished["datasetId"]);
    }

    public static TheoryData<string, byte[], string, string?, int?> BadFiles => new()
    {
        { "empty", [], "dataset.empty", null, null },
        { "only a BOM", Encoding.UTF8.GetPreamble(), "dataset.empty", null, null },
        { "header only", Encoding.UTF8.GetBytes("a,b,c\n"), "dataset.no_rows", null, null },
        { "duplicate names", Encoding.UTF8.GetBytes("a,b,a\n1,2,3\n"), "dataset.duplicate_column", "a", null },
        { "empty name", Encoding.UTF8.GetBytes("a,,c\n1,2,3\n"), "dataset.empty_column_name", null, null },
        { "too many fields", Encoding.UTF8.GetBytes("a,b\n1,2\n3,4,5\n"), "dataset.ragged_row", null, 3 },
        { "too few fields", Encoding.UTF8.GetBytes("a,b,c\n1,2,3\n4,5\n"), "dataset.ragged_row", null, 3 },
        { "unterminated quote", Encoding.UTF8.GetBytes("a,b\n1,\"abc\n2,3\n"), "dataset.unterminated_quote", null, 2 },
        { "stray quote", Encoding.UTF8.GetBytes("a,b\n1,2\nab\"c,3\n4,5\n"), "dataset.malformed_quote", null, 3 },
        { "undoubled inner quote", Encoding.UTF8.GetBytes("a,b\n\"x\"y\",1\n"), "dataset.malformed_quote", null, 2 },
        { "not UTF-8", [.. Encoding.UTF8.GetBytes("a,b\n1,caf"), 0xE9, .. Encoding.UTF8.GetBytes(",2\n")], "dataset.invalid_utf8", null, null },
        { "binary", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D], "dataset.not_text", null, null },
        { "too many columns", Encoding.UTF8.GetBytes(string.Join(",", Enumerable.Range(0, 201).Select(i => $"c{i}")) + "\n" +
            string.Join(",", Enumerable.Range(0, 201)) + "\n"), "dataset.too_many_columns", null, null },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task A_bad_file_is_refused_with_its_own_code_and_nothing_is_stored(string what, byte[] bytes, string code, string? field, int? line)
    {
        long datasets = await CountAsync("datasets"), chunks = await CountAsync("dataset_chunks");

        var problem = await (await _client.PostBytesAsync(bytes)).AssertProblemAsync(HttpStatusCode.BadRequest, code, field);

        Assert.True(line is null || (int)problem["line"]! == line, $"{what}: expected line {line}, got {problem["line"]}");
        Assert.Equal(datasets, await CountAsync("datasets"));
        Assert.Equal(chunks, await CountAsync("dataset_chunks"));
    }

    [Fact]
    public async Task Invalid_utf8_is_reported_at_its_byte_offset()
    {
        byte[] bytes = [.. Encoding.UTF8.GetBytes("a,b\n1,caf"), 0xE9, .. Encoding.UTF8.GetBytes(",2\n")];

        var problem = await (await _client.PostBytesAsync(bytes)).AssertProblemAsync(HttpStatusCode.BadRequest, "dataset.invalid_utf8");

        Assert.Equal(9, (long)problem["offset"]!);
    }

    [Fact]
    public async Task A_file_over_the_size_cap_gets_413_and_nothing_is_stored()
    {
        long datasets = await CountAsync("datasets");
        var content = new StreamContent(new RepeatingCsvStream(17_000_000));
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");

        var response = await _client.PostAsync("/api/datasets", content);

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "dataset.too_large");
        Assert.Equal(datasets, await CountAsync("datasets"));
    }

    [Fact]
    public async Task Thousands_of_malformed_and_random_inputs_never_fail_unexpectedly_or_store_a_malformed_file()
    {
        var importer = service.Factory.Services.GetRequiredService<CsvImporter>();
        var random = new Random(2024);
        string valid = "a,b,c\n1,2,x\n3,4,\"y, z\"\n5,6,\"q\"\"r\"\n";
        int accepted = 0, refused = 0;
        for (int i = 0; i < 3000; i++)
        {
            bool malformed = i % 2 == 0;
            byte[] input = malformed ? Malform(valid, random) : RandomInput(random);
            long datasets = await CountAsync("datasets");
            var result = await importer.ImportAsync("default", new MemoryStream(input), $"fuzz-{i}", null, CancellationToken.None);
            if (result.Problem is null)
            {
                Assert.False(malformed, $"malformed input {i} was accepted: {Convert.ToBase64String(input)}");
                accepted++;
            }
            else
            {
                Assert.InRange(result.Problem.Status, 400, 499);
                Assert.Equal(datasets, await CountAsync("datasets"));
                refused++;
            }
        }
        Assert.True(refused > 1500 && accepted > 0, $"accepted {accepted}, refused {refused}");
    }

    /// <summary>A valid file broken in one of the ways the importer must refuse.</summary>
    private static byte[] Malform(string valid, Random random)
    {
        var bytes = Encoding.UTF8.GetBytes(valid).ToList();
        switch (random.Next(6))
        {
            case 0: // a row with an extra field
                return Encoding.UTF8.GetBytes(valid + "7,8,9,10\n");
            case 1: // an unterminated quote
                return Encoding.UTF8.GetBytes(valid + $"7,8,\"open{random.Next()}\n");
            case 2: // an invalid UTF-8 byte somewhere after the header
                bytes.Insert(random.Next(6, bytes.Count), (byte)random.Next(0x80, 0xC0));
                return bytes.ToArray();
            case 3: // a NUL byte
                bytes.Insert(random.Next(0, bytes.Count), 0);
                return bytes.ToArray();
            case 4: // a stray quote inside an unquoted field
                return Encoding.UTF8.GetBytes(valid.Replace("1,2,x", $"1,2{new string('"', 1 + 2 * random.Next(2))}x"));
            default: // a duplicate column name
                return Encoding.UTF8.GetBytes(valid.Replace("a,b,c", "a,b,a"));
        }
    }

    /// <summary>Random bytes, random printable text, or random CSV-ish text with quotes, separators and newlines.</summary>
    private static byte[] RandomInput(Random random)
    {
        int length = random.Next(0, 200);
        switch (random.Next(3))
        {
            case 0:
                var raw = new byte[length];
                random.NextBytes(raw);
                return raw;
            case 1:
                return Encoding.UTF8.GetBytes(new string(Enumerable.Range(0, length).Select(_ => (char)random.Next(32, 127)).ToArray()));
            default:
                const string alphabet = "ab1,;\t\"\n\r 2.5NAé";
                return Encoding.UTF8.GetBytes(new string(Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray()));
        }
    }

    /// <summary>A CSV body of the given size generated on the fly (never held in memory).</summary>
    private sealed class RepeatingCsvStream(long size) : Stream
    {
        private static readonly byte[] Header = Encoding.ASCII.GetBytes("a,b,c\n");
        private static readonly byte[] Row = Encoding.ASCII.GetBytes("1.25,2.5,3.75\n");
        private long _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            int written = 0;
            while (written < count && _position < size)
            {
                byte[] source = _position < Header.Length ? Header : Row;
                long within = _position < Header.Length ? _position : (_position - Header.Length) % Row.Length;
                buffer[offset + written++] = source[within];
                _position++;
            }
            return written;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => size;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
