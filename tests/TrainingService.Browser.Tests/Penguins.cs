using System.Globalization;
using System.Text;

namespace TrainingService.Browser.Tests;

/// <summary>
/// Penguins-like data, made up here: species (the label, three classes) from bill, flipper and mass measurements drawn
/// around each species' real means, the island as a category, and missing cells in bill_length_mm and sex at fixed
/// intervals so a test knows how many to expect.
/// </summary>
public sealed record Penguins(string Csv, int Rows, int MissingBillLength, int MissingSex)
{
    public const string Header = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex";

    private static readonly (string Name, double Bill, double Depth, double Flipper, double Mass, string[] Islands)[] Species =
    [
        ("Adelie", 38.8, 18.3, 190, 3700, ["Biscoe", "Dream", "Torgersen"]),
        ("Chinstrap", 48.8, 18.4, 196, 3733, ["Dream"]),
        ("Gentoo", 47.5, 15.0, 217, 5076, ["Biscoe"]),
    ];

    public static Penguins Generate(int rows, int seed = 7)
    {
        var random = new Random(seed);
        var csv = new StringBuilder(Header).Append('\n');
        int missingBill = 0, missingSex = 0;
        for (int i = 0; i < rows; i++)
        {
            var s = Species[i % Species.Length];
            bool noBill = i % 17 == 5, noSex = i % 11 == 3;
            missingBill += noBill ? 1 : 0;
            missingSex += noSex ? 1 : 0;
            csv.Append(CultureInfo.InvariantCulture,
                $"{s.Name},{s.Islands[random.Next(s.Islands.Length)]},{(noBill ? "" : Round(s.Bill + 2.5 * Normal(random)))}," +
                $"{Round(s.Depth + Normal(random))},{Math.Round(s.Flipper + 6 * Normal(random))},{Math.Round(s.Mass + 400 * Normal(random))}," +
                $"{(noSex ? "" : random.Next(2) == 0 ? "male" : "female")}\n");
        }
        return new Penguins(csv.ToString(), rows, missingBill, missingSex);
    }

    private static string Round(double value) => Math.Round(value, 1).ToString(CultureInfo.InvariantCulture);

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
