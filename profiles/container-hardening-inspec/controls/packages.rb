# Packages: the same rules as container-hardening's packages.yml, in InSpec syntax.

control 'ch-pkg-01' do
  impact 0.7
  title 'No telnet client or server'
  desc 'telnet sends credentials in clear text; images should not ship it (CIS 4.3, least functionality).'
  tag nist: %w[CM-7 SC-8], cis: '4.3', severity: 'high'
  %w[telnet telnetd inetutils-telnet inetutils-telnetd].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-02' do
  impact 0.7
  title 'No rsh/rlogin tools'
  desc 'The r-commands authenticate by host name and send data in clear text.'
  tag nist: %w[CM-7 SC-8], cis: '4.3', severity: 'high'
  %w[rsh-client rsh-server rsh-redone-client rsh-redone-server].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-03' do
  impact 0.5
  title 'No FTP client or server'
  desc 'FTP transfers credentials and data unencrypted.'
  tag nist: %w[CM-7 SC-8], cis: '4.3', severity: 'medium'
  %w[ftp tnftp vsftpd proftpd-basic pure-ftpd].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-04' do
  impact 0.5
  title 'No TFTP client or server'
  desc 'TFTP has no authentication at all.'
  tag nist: %w[CM-7 IA-2], cis: '4.3', severity: 'medium'
  %w[tftp tftpd tftp-hpa tftpd-hpa atftpd].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-05' do
  impact 0.5
  title 'No netcat'
  desc 'netcat turns any code execution into a reverse shell or an exfiltration channel.'
  tag nist: %w[CM-7], cis: '4.3', severity: 'medium'
  %w[netcat netcat-traditional netcat-openbsd ncat socat].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-06' do
  impact 0.5
  title 'No network scanners'
  desc 'Scanners in a workload image help an attacker map the cluster network.'
  tag nist: %w[CM-7 SC-7], cis: '4.3', severity: 'medium'
  %w[nmap masscan zmap].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-07' do
  impact 0.5
  title 'No packet capture tools'
  desc 'Packet capture inside a pod can sniff other traffic on shared network namespaces.'
  tag nist: %w[CM-7 SC-8], cis: '4.3', severity: 'medium'
  %w[tcpdump tshark wireshark ngrep].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-08' do
  impact 0.3
  title 'No compilers or build tools'
  desc 'Build tools let an intruder compile exploits in place; multi-stage builds keep them out of runtime images (SP 800-190 4.1.2).'
  tag nist: %w[CM-7], cis: '4.3', severity: 'low'
  %w[gcc g++ cpp make build-essential clang].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-09' do
  impact 0.3
  title 'No debuggers or tracers'
  desc 'Debuggers read and alter other processes\' memory.'
  tag nist: %w[CM-7], cis: '4.3', severity: 'low'
  %w[gdb strace ltrace].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-10' do
  impact 0.5
  title 'No SSH server'
  desc 'Containers are entered through the runtime; an SSH daemon is extra attack surface and bypasses audit (CIS 5.6 intent).'
  tag nist: %w[CM-7 AC-17], cis: '4.3', severity: 'medium'
  %w[openssh-server dropbear dropbear-bin tinyssh].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-11' do
  impact 0.5
  title 'No inetd super-servers'
  desc 'inetd starts legacy network services on demand.'
  tag nist: %w[CM-7], cis: '4.3', severity: 'medium'
  %w[xinetd openbsd-inetd inetutils-inetd].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-12' do
  impact 0.3
  title 'No sudo'
  desc 'Containers should drop privileges at start, not carry a way to regain them.'
  tag nist: %w[AC-6], cis: '4.3', severity: 'low'
  %w[sudo doas].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-13' do
  impact 0.5
  title 'No NIS'
  desc 'NIS distributes password hashes in clear text.'
  tag nist: %w[CM-7 IA-5], severity: 'medium'
  %w[nis ypbind ypserv].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-14' do
  impact 0.3
  title 'No talk or finger'
  desc 'Legacy user-information services leak account names.'
  tag nist: %w[CM-7], severity: 'low'
  %w[talk talkd finger fingerd].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end

control 'ch-pkg-15' do
  impact 0.3
  title 'No cached package archives'
  desc 'Cached .deb files bloat the image and keep outdated software around (CIS 4.3 / 4.7 intent).'
  tag nist: %w[CM-7 CM-2], cis: '4.7', severity: 'low'
  if directory('/var/cache/apt/archives').exist?
    describe command(ContainerChecks.find_command(%w[/var/cache/apt/archives], %w[/var/cache/apt/archives/lock /var/cache/apt/archives/partial], '-type f')) do
      its('stdout') { should be_empty }
      its('exit_status') { should eq 0 }
    end
  else
    describe directory('/var/cache/apt/archives') do
      it { should_not exist }
    end
  end
end

control 'ch-pkg-16' do
  impact 0.3
  title 'No cached package lists'
  desc 'Stale package lists mean a later install in the container pulls outdated versions; clean them in the same layer.'
  tag nist: %w[CM-2 SI-2], cis: '4.7', severity: 'low'
  if directory('/var/lib/apt/lists').exist?
    describe command(ContainerChecks.find_command(%w[/var/lib/apt/lists], %w[/var/lib/apt/lists/lock /var/lib/apt/lists/partial], '-type f')) do
      its('stdout') { should be_empty }
      its('exit_status') { should eq 0 }
    end
  else
    describe directory('/var/lib/apt/lists') do
      it { should_not exist }
    end
  end
end

control 'ch-pkg-17' do
  impact 0.3
  title 'The package database is root-owned and not writable by others'
  desc 'A tampered package database hides installed software from vulnerability scanners.'
  tag nist: %w[CM-8 SI-7], severity: 'low'
  if file('/var/lib/dpkg/status').exist?
    describe file('/var/lib/dpkg/status') do
      it { should be_file }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0644') }
    end
  else
    describe file('/var/lib/dpkg/status') do
      it { should_not exist }
    end
  end
end
